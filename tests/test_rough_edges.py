"""What a new user's mistakes give: one line that names what to change, before training goes wrong."""
from __future__ import annotations

import pytest
import torch

from avalanche.models import SimpleMLP
from avalanche.training import Cumulative, Naive

from replay import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget
from replay.bench.cli import main
from replay.errors import UserInputError
from replay.generators import mlp_vae
from replay.models import BIRModel
from replay.priors import build


def gr_plugin() -> GenerativeReplayPlugin:
    return GenerativeReplayPlugin(mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(16,)))


def second_experience_error(model, plugin, stream) -> str:
    """The one line with which training ``model`` under ``plugin`` stops on the stream's second experience."""
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=16, evaluator=None,
                     plugins=[plugin, IterationBudget(2)])
    strategy.train(stream.train_stream[0])
    with pytest.raises(UserInputError) as error:
        strategy.train(stream.train_stream[1])
    return str(error.value)


def test_a_solver_with_too_few_output_units_is_refused_in_one_line(tiny_stream):
    solver = SimpleMLP(num_classes=2, input_size=16, hidden_size=16, hidden_layers=1)
    assert second_experience_error(solver, gr_plugin(), tiny_stream).startswith(
        "SimpleMLP gives 2 output units, but experience 1 has class 3: build the model with at least 4 outputs")


def test_a_bir_model_with_too_few_classes_is_refused_naming_its_n_classes(tiny_stream):
    model = BIRModel((16,), 2, build("gmm", latent_dim=4, n_classes=2), (16,))
    assert second_experience_error(model, BrainInspiredReplayPlugin(), tiny_stream).startswith(
        "BIRModel has n_classes=2, but experience 1 has class 3: build it with n_classes of at least 4")


def test_replay_inside_cumulative_is_refused_in_one_line(tiny_stream):
    solver = SimpleMLP(num_classes=4, input_size=16, hidden_size=16, hidden_layers=1)
    strategy = Cumulative(model=solver, optimizer=torch.optim.Adam(solver.parameters()), criterion=torch.nn.CrossEntropyLoss(),
                          evaluator=None,
                          plugins=[gr_plugin(), IterationBudget(2)])
    with pytest.raises(UserInputError, match=r"^GenerativeReplayPlugin replays .* Cumulative already trains on all "
                                             r"their data: use Naive"):
        strategy.train(tiny_stream.train_stream[0])


def test_status_of_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["status", str(tmp_path / "no" / "such")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"replay-bench: {tmp_path / 'no' / 'such'} is not a folder; give the folders that hold runs (e.g. runs/)"


def test_conv_vae_takes_mlp_vaes_argument_order_and_refuses_other_shapes_when_built():
    from replay.generators import conv_vae

    prior = build("gaussian", latent_dim=4)
    assert conv_vae((3, 32, 32), prior, (16,)).input_shape == (3, 32, 32)
    with pytest.raises(UserInputError, match=r"^conv_vae\(input_shape, prior, \.\.\.\): the second argument must be a "
                                             r"latent prior \(replay\.priors\.build\(\.\.\.\)\), got tuple$"):
        conv_vae(prior, (3, 32, 32))
    with pytest.raises(UserInputError, match=r"^conv_vae models 32x32 images, shape \(channels, 32, 32\); got "
                                             r"\(1, 28, 28\): use mlp_vae for other shapes$"):
        conv_vae((1, 28, 28), prior)
    with pytest.raises(UserInputError, match=r"^mlp_vae: input_shape must be a sequence of positive integers"):
        mlp_vae(784, prior)


def test_a_generator_built_for_another_shape_is_refused_on_the_first_batch_before_any_update(tiny_stream):
    solver = SimpleMLP(num_classes=4, input_size=16, hidden_size=16, hidden_layers=1)
    before = [p.detach().clone() for p in solver.parameters()]
    plugin = GenerativeReplayPlugin(mlp_vae((8,), build("gaussian", latent_dim=4), hidden=(16,)))
    strategy = Naive(model=solver, optimizer=torch.optim.Adam(solver.parameters()), train_mb_size=16, evaluator=None,
                     plugins=[plugin, IterationBudget(2)])
    with pytest.raises(UserInputError, match=r"^GenerativeReplayPlugin, experience 0: the data's samples have shape "
                                             r"\(16,\), but the generator was built for \(8,\): build it with the "
                                             r"data's shape$"):
        strategy.train(tiny_stream.train_stream[0])
    assert all(torch.equal(a, b) for a, b in zip(before, solver.parameters()))


@pytest.mark.parametrize("method", ["gr", "bir"])
def test_the_bernoulli_prior_trains_with_batches_of_one_and_a_last_partial_batch(tiny_stream, method):
    """Epoch-based training whose last batch holds one sample (200 + 200 = 400 = 3 x 133 + 1), and batches of one."""
    prior = build("bernoulli", latent_dim=4, n_classes=4)
    if method == "gr":
        model = SimpleMLP(num_classes=4, input_size=16, hidden_size=16, hidden_layers=1)
        plugin = GenerativeReplayPlugin(mlp_vae((16,), prior, hidden=(16,)))
    else:
        model, plugin = BIRModel((16,), 4, prior, (16,)), BrainInspiredReplayPlugin()
    for batch, plugins in ((133, [plugin]), (1, [plugin, IterationBudget(3)])):
        strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=batch,
                         train_epochs=1, evaluator=None, plugins=plugins)
        for experience in tiny_stream.train_stream:
            strategy.train(experience)
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_batch_of_one_is_normalised_with_the_running_statistics_and_leaves_them_unchanged():
    from replay.priors.bernoulli import TanhHead

    head = TanhHead(6, 3)
    head(torch.randn(32, 6))  # running statistics from a batch of 32
    running = (head.norm.running_mean.clone(), head.norm.running_var.clone())
    x = torch.randn(1, 6)
    trained = head(x).mean
    head.eval()
    assert torch.allclose(trained, head(x).mean)
    assert torch.equal(head.norm.running_mean, running[0]) and torch.equal(head.norm.running_var, running[1])


def test_a_bir_model_whose_prior_has_fewer_class_slots_is_refused_when_built():
    with pytest.raises(UserInputError, match=r"^BIRModel has n_classes=6, but its prior has 4 class slots: build the "
                                             r"prior with n_classes=6$"):
        BIRModel((16,), 6, build("gmm", latent_dim=4, n_classes=4), (16,))
    assert BIRModel((16,), 6, build("gaussian", latent_dim=4), (16,)).n_classes == 6  # a class-free prior fits any


def test_a_bir_model_built_for_another_shape_is_refused_on_the_first_batch(tiny_stream):
    model = BIRModel((15,), 4, build("gmm", latent_dim=4, n_classes=4), (16,))
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters()), train_mb_size=16, evaluator=None,
                     plugins=[BrainInspiredReplayPlugin(), IterationBudget(2)])
    with pytest.raises(UserInputError, match=r"^BrainInspiredReplayPlugin, experience 0: the data's samples have shape "
                                             r"\(16,\), but BIRModel was built for input_shape=\(15,\)"):
        strategy.train(tiny_stream.train_stream[0])
