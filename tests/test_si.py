"""Synaptic intelligence as BI-R's reference code computes it (replay.methods.si) and BI-R + SI (si_c > 0)."""
from __future__ import annotations

import pytest
import torch
from avalanche.training.plugins import SupervisedPlugin

from replay.bench.contract import CONTRACT, tiny_strategy
from replay.errors import UserInputError
from replay.methods import BrainInspiredReplayMethod
from replay.methods.si import SynapticIntelligence
from replay.models import BIRModel
from replay.priors import build

EPSILON, LR, C = 0.1, 0.1, 0.5


def hand_path(theta: float, target: float, steps: int, omega: float = 0.0, anchor: float = 0.0):
    """Plain SGD on (theta - target)^2 + C * omega * (theta - anchor)^2, in Python floats: (theta after, W)."""
    w = 0.0
    for _ in range(steps):
        grad = 2 * (theta - target) + C * omega * 2 * (theta - anchor)
        new = theta - LR * grad
        w += -grad * (new - theta)
        theta = new
    return theta, w


def test_omega_matches_a_hand_computation_over_two_experiences():
    """W along a known SGD path (the penalty's own gradient included in the second experience), omega = W /
    (Delta^2 + epsilon) with Delta from the start of training, then from the first experience's end; W reset."""
    theta = torch.nn.Parameter(torch.tensor([0.0, 2.0]))
    params = {"theta": theta}
    optimizer = torch.optim.SGD([theta], lr=LR)
    si = SynapticIntelligence(EPSILON)
    targets = [torch.tensor([1.0, 1.5]), torch.tensor([-1.0, 3.0])]
    for target, steps in zip(targets, (3, 4)):
        si.start(params)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = ((theta - target) ** 2).sum()
            penalty = si.penalty(params)
            if penalty is not None:
                loss = loss + C * penalty
            loss.backward()
            optimizer.step()
            si.accumulate(params)
        si.consolidate(params)
        assert torch.count_nonzero(si.path["theta"]) == 0, "W is not reset at the experience's end"
    for i, start in enumerate((0.0, 2.0)):
        end1, w1 = hand_path(start, float(targets[0][i]), 3)
        omega1 = w1 / ((end1 - start) ** 2 + EPSILON)
        end2, w2 = hand_path(end1, float(targets[1][i]), 4, omega1, end1)
        omega2 = omega1 + w2 / ((end2 - end1) ** 2 + EPSILON)
        assert si.omega["theta"][i].item() == pytest.approx(omega2, rel=1e-5)
        assert si.anchor["theta"][i].item() == pytest.approx(end2, rel=1e-6)
        assert theta[i].item() == pytest.approx(end2, rel=1e-6)


def test_penalty_value_and_gradient():
    """sum omega (theta - theta*)^2, no 1/2; gradient 2 omega (theta - theta*)."""
    si = SynapticIntelligence()
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    si.omega = {"theta": torch.tensor([0.5, 2.0, 0.0])}
    si.anchor = {"theta": torch.tensor([0.0, -1.0, 3.0])}
    penalty = si.penalty({"theta": theta})
    assert penalty.item() == pytest.approx(0.5 * 1.0 + 2.0 * 1.0 + 0.0)
    penalty.backward()
    assert torch.allclose(theta.grad, torch.tensor([1.0, -4.0, 0.0]))
    assert SynapticIntelligence().penalty({"theta": theta}) is None


def test_penalty_matches_autograd_on_matrices_and_stays_fp32_under_bf16_autocast():
    """The fused penalty (one pass forward, one backward) against autograd's own sum omega (theta - theta*)^2, on
    several parameters of other shapes; under bf16 autocast its value and gradient are still the fp32 ones."""
    torch.manual_seed(0)
    params = {"w": torch.nn.Parameter(torch.randn(7, 5)), "b": torch.nn.Parameter(torch.randn(7))}
    si = SynapticIntelligence()
    si.omega = {name: torch.rand_like(p) for name, p in params.items()}
    si.anchor = {name: torch.randn_like(p) for name, p in params.items()}
    expected = sum((si.omega[n] * (p - si.anchor[n]) ** 2).sum() for n, p in params.items())
    wanted = torch.autograd.grad(expected, list(params.values()))
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            penalty = si.penalty(params)
        got = torch.autograd.grad(penalty, list(params.values()))
        assert penalty.dtype == torch.float32 and penalty.item() == pytest.approx(expected.item(), rel=1e-6)
        assert all(torch.allclose(g, w, rtol=1e-6, atol=1e-7) for g, w in zip(got, wanted))


def test_covers_the_encoders_fully_connected_layers_and_the_classifier_only():
    model = BIRModel((1, 8, 8), 4, build("gmm", 3, 4), hidden=(10, 6))
    covered = BrainInspiredReplayMethod.si_parameters(model)
    assert set(covered) == {f"encoder.{n}" for n, _ in model.encoder.named_parameters()} | {
        "classifier.weight", "classifier.bias"}
    ids = {id(p) for p in covered.values()}
    for part in (model.head, model.decoder, model.prior):
        assert not ids & {id(p) for p in part.parameters()}, f"{type(part).__name__} must keep omega = 0"


class GradientProbe(SupervisedPlugin):
    """Records, per iteration, the loss the strategy backpropagated, each covered parameter's gradient and its values
    before and after the optimiser step; and SI's W at the experience's end, before BI-R's ``finish`` (the probe comes
    first among the plugins) consolidates it."""

    def __init__(self, si: SynapticIntelligence):
        super().__init__()
        self.si, self.steps, self.path = si, [], None

    def before_update(self, strategy, **kwargs):
        covered = BrainInspiredReplayMethod.si_parameters(strategy.model)
        self.steps.append({"loss": strategy.loss.detach().clone(),
                           "grad": {n: p.grad.clone() for n, p in covered.items()},
                           "before": {n: p.detach().clone() for n, p in covered.items()}})

    def after_update(self, strategy, **kwargs):
        covered = BrainInspiredReplayMethod.si_parameters(strategy.model)
        self.steps[-1]["after"] = {n: p.detach().clone() for n, p in covered.items()}

    def after_training_exp(self, strategy, **kwargs):
        self.path = {name: w.clone() for name, w in self.si.path.items()}


def test_path_integral_reads_the_gradient_of_the_whole_loss():
    """In the second experience the backpropagated loss is (1/t) current + (1 - 1/t) replay + c * si, and W grows by
    -grad * step of that loss's gradient."""
    strategy, plugin = tiny_strategy("bir", keys={"si_c": 2.0})
    method = plugin.method
    strategy.train(strategy.stream.train_stream[0])
    probe = GradientProbe(method.si)
    strategy.plugins.insert(0, probe)
    strategy.train(strategy.stream.train_stream[1])
    terms = plugin.last_losses
    assert {"si", "classification_replay", "recon_replay", "reg_replay"} <= set(terms)
    current = sum(v for k, v in terms.items() if k.endswith("_current"))
    replayed = sum(v for k, v in terms.items() if k.endswith("_replay"))
    expected = 0.5 * current + 0.5 * replayed + 2.0 * terms["si"]
    assert probe.steps[-1]["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert set(probe.path) == set(method.si_parameters(strategy.model))
    for name, path in probe.path.items():
        hand = sum(-s["grad"][name] * (s["after"][name] - s["before"][name]) for s in probe.steps)
        assert torch.count_nonzero(hand) > 0
        assert torch.allclose(path, hand, atol=1e-9, rtol=1e-4), name


def test_si_off_by_default_and_its_range_checked():
    assert BrainInspiredReplayMethod().si is None
    with pytest.raises(UserInputError, match=r"method.si_c must be .*>= 0"):
        BrainInspiredReplayMethod(si_c=-1.0)
    with pytest.raises(UserInputError, match=r"method.si_epsilon"):
        BrainInspiredReplayMethod(si_c=1.0, si_epsilon=0.0)


def test_a_state_without_si_is_refused_by_a_method_with_si():
    state = BrainInspiredReplayMethod().state_dict()
    with pytest.raises(UserInputError, match="without synaptic intelligence"):
        BrainInspiredReplayMethod(si_c=1.0).load_state_dict(state)


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_bir_with_si_keeps_the_method_contract(check):
    check("bir", {"si_c": 1.0})


def test_compare_and_plots_know_bir_with_si(tmp_path):
    """The CSV names the SI settings in method_params, the figures' labels say BI-R + SI, and the compare table keeps
    the two configurations apart."""
    from replay.bench.compare import compare_table, group_results, runs_csv
    from replay.bench.plots import short_labels
    from replay.bench.results import read_result
    from tests.test_cli import fake_result

    results = [read_result(fake_result(tmp_path / f"{name}{seed}.json", "bir", seed, [0.9, 0.8], stream="permuted_mnist",
                                       method_options=options))
               for seed in (0, 1) for name, options in (("bir", {}), ("si", {"si_c": 1.0}))]
    rows = runs_csv(results).splitlines()
    assert rows[0].startswith("method,method_params,")
    assert sum(",si_c=1.0," in row for row in rows) == 2 and sum(row.startswith("bir,,") for row in rows) == 2
    groups = group_results(results)
    assert len(groups) == 2 and "si_c=1.0" in compare_table(results)
    assert sorted(short_labels(groups)) == ["BI-R + SI / gmm", "BI-R / gmm"]
