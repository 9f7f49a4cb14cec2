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
