"""Runs that never lose work and never lie: overwrite refusal, the non-finite stop, corrupt checkpoints, the
folder lock, range errors, one error type for users (tracebacks for the rest), and a fuzz test of the CLI."""
from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avalanche.training import Naive

from replay import BrainInspiredReplayPlugin, GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.bench.cli import main
from replay.bench.config import SCHEMA, method_keys, method_names, resolve
from replay.priors import prior_schema
from replay.bench.rundir import RunFolder, read_checkpoint
from replay.errors import NonFiniteError, UserInputError
from replay.generators import mlp_vae
from replay.models import BIRModel, MLPClassifier
from replay.plugins.finite import FiniteGuard
from replay.methods import GenerativeReplayMethod
from replay.priors import PRIORS, build, prior_parameters

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--set", "model.hidden=[16]", "--set", "model.latent_dim=4", "--set", "progress=false",
         "--set", "eval_batch_size=5000", "--set", "iterations_per_experience=3", "--set", "replay_quality=false"]
CONFIGS = REPO / "configs" / "split_mnist"


def run_cli(mnist_root, out, *extra, config="naive.yaml"):
    return main(["run", str(CONFIGS / config), "--out", str(out), "--set", f"stream.root={mnist_root}", *SMALL, *extra])


def one_line_error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("replay-bench: "), lines
    return lines[0]


# -- never overwrite a run --------------------------------------------------------------------------------------
def test_a_finished_run_is_never_overwritten(mnist_root, tmp_path, capsys):
    assert run_cli(mnist_root, tmp_path) == 0
    before = (tmp_path / "result.json").read_bytes()
    assert run_cli(mnist_root, tmp_path, "--seed", "3") == 2
    line = one_line_error(capsys)
    assert "holds a finished run" in line and str(tmp_path / "result.json") in line and "--overwrite" in line
    assert (tmp_path / "result.json").read_bytes() == before
    assert run_cli(mnist_root, tmp_path, "--resume") == 0  # finished: nothing is run again
    assert "nothing to do" in capsys.readouterr().out and (tmp_path / "result.json").read_bytes() == before
    assert run_cli(mnist_root, tmp_path, "--seed", "3", "--resume") == 2  # another config's result is not returned
    assert "different config" in one_line_error(capsys)
    assert run_cli(mnist_root, tmp_path, "--seed", "3", "--overwrite") == 0  # on purpose
    assert json.loads((tmp_path / "result.json").read_text())["seed"] == 3


def test_an_unfinished_run_asks_for_resume(mnist_root, tmp_path, capsys):
    assert run_cli(mnist_root, tmp_path) == 0
    (tmp_path / "result.json").unlink()  # as if killed after the last checkpoint
    checkpoint = (tmp_path / "checkpoint.pt").read_bytes()
    assert run_cli(mnist_root, tmp_path) == 2
    assert "unfinished run; add --resume" in one_line_error(capsys)
    assert (tmp_path / "checkpoint.pt").read_bytes() == checkpoint


# -- non-finite values ------------------------------------------------------------------------------------------
def test_a_diverging_run_stops_with_one_line(mnist_root, tmp_path):
    """GR with lr = 10000 (the split-MNIST network): the run stops in its first experience (exit 2, no result),
    naming the term and the iteration, on the only line of stderr."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "replay.bench.cli", "run", str(CONFIGS / "gr_gaussian.yaml"), "--out",
                           str(tmp_path), "--set", f"stream.root={mnist_root}", "--set", "progress=false", "--set",
                           "iterations_per_experience=200", "--set", "optimizer.lr=10000", "--set",
                           "check_finite_every=10"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(r"loss term '\w+' is (nan|inf) at experience 0, iteration \d+:", lines[0])
    assert "no experience had finished" in lines[0] and "lower the learning rate" in lines[0]
    assert not (tmp_path / "result.json").exists()


def test_the_stop_keeps_the_last_good_checkpoint(mnist_root, tmp_path, capsys, monkeypatch):
    """A NaN in the third experience's generator loss: the message names it; the checkpoint of the second loads."""
    original = GenerativeReplayMethod.generator_loss

    def nan_in_third_experience(self, x, labels, weights):
        loss = original(self, x, labels, weights)
        return loss * float("nan") if self.lifecycle.experiences_done == 2 else loss

    monkeypatch.setattr(GenerativeReplayMethod, "generator_loss", nan_in_third_experience)
    assert run_cli(mnist_root, tmp_path, "--set", "check_finite_every=2", config="gr_gaussian.yaml") == 2
    line = one_line_error(capsys)
    assert "loss term 'generator' is nan at experience 2, iteration 0" in line
    assert f"the checkpoint after experience 1 is kept in {tmp_path / 'checkpoint.pt'}" in line
    state = read_checkpoint(tmp_path / "checkpoint.pt")
    assert state["finished_experiences"] == 2 and len(state["accuracy_matrix"]) == 2
    assert all(torch.isfinite(p).all() for p in state["model"].values() if p.is_floating_point())
    assert not (tmp_path / "result.json").exists()


def test_guard_reads_the_device_record_only_every_k_iterations():
    guard = FiniteGuard(every=4)
    module = torch.nn.Linear(2, 2)
    for value in (1.0, float("inf"), 2.0):  # the bad value is recorded, not yet read
        guard.observe({"a": torch.tensor(0.5), "b": torch.tensor(value)}, {"m": module})
    with pytest.raises(NonFiniteError, match=r"loss term 'b' is inf at experience 0, iteration 1"):
        guard.observe({"a": torch.tensor(0.5), "b": torch.tensor(1.0)}, {"m": module})
    guard.start(3)
    with torch.no_grad():
        module.weight[0, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"parameter m.weight is not finite after experience 3"):
        guard.check({"m": module})
    FiniteGuard(every=0).check({"m": module})  # switched off: nothing is read


@pytest.mark.parametrize("method", ["gr", "bir"])
def test_plugins_guard_users_pipelines_by_default(tiny_stream, method):
    def strategy(check_every):
        torch.manual_seed(0)
        if method == "gr":
            model = MLPClassifier((16,), 4, (32,))
            generator = mlp_vae((16,), build("gaussian", latent_dim=4), hidden=(32,))
            plugin = GenerativeReplayPlugin(generator, lr=1e4, check_finite_every=check_every)
        else:
            model = BIRModel((16,), 4, build("gmm", latent_dim=4, n_classes=4), hidden=(32,))
            plugin = BrainInspiredReplayPlugin(check_finite_every=check_every)
        return Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1e6), train_mb_size=32,
                     train_epochs=1, plugins=[plugin, SeenUnitsMask(), IterationBudget(40)])

    with pytest.raises(NonFiniteError, match="at experience 0, iteration"):
        strategy(10).train(tiny_stream.train_stream[0])
    strategy(0).train(tiny_stream.train_stream[0])  # the switch: off, training goes on


# -- checkpoints ------------------------------------------------------------------------------------------------
def test_a_truncated_checkpoint_falls_back_to_the_previous_one(mnist_root, tmp_path, capsys):
    reference = tmp_path / "reference"
    assert run_cli(mnist_root, reference, config="gr_gaussian.yaml") == 0
    run = tmp_path / "run"
    keep = ("--set", "checkpoints=all")  # a finished run keeps checkpoint.prev.pt, as a running one does
    assert run_cli(mnist_root, run, *keep, config="gr_gaussian.yaml") == 0
    (run / "result.json").unlink()  # killed while writing the last checkpoint
    previous = read_checkpoint(run / "checkpoint.prev.pt")
    assert previous["finished_experiences"] == 4
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert run_cli(mnist_root, run, "--resume", *keep, config="gr_gaussian.yaml") == 0
    out = capsys.readouterr().out
    assert "checkpoint.pt is unreadable" in out and "resuming from" in out and "(4 experiences finished)" in out
    assert "after experience 3:" not in out and "after experience 4:" in out
    first, second = (json.loads((folder / "result.json").read_text()) for folder in (reference, run))
    assert second["accuracy_matrix"] == first["accuracy_matrix"]


def test_no_readable_checkpoint_is_one_line(mnist_root, tmp_path, capsys):
    assert run_cli(mnist_root, tmp_path) == 0
    (tmp_path / "result.json").unlink()
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (tmp_path / name).write_bytes(b"not a checkpoint")
    assert run_cli(mnist_root, tmp_path, "--resume") == 2
    line = one_line_error(capsys)
    assert "no readable checkpoint" in line and "checkpoint.prev.pt is unreadable" in line


# -- one process per folder -------------------------------------------------------------------------------------
def test_a_second_process_on_the_folder_is_refused(mnist_root, tmp_path, capsys):
    with RunFolder(tmp_path):
        assert run_cli(mnist_root, tmp_path) == 2
        assert f"in use by another replay-bench process (pid {os.getpid()})" in one_line_error(capsys)
    assert run_cli(mnist_root, tmp_path) == 0  # released


def test_a_killed_process_leaves_no_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from replay.bench.rundir import RunFolder\n"
                               f"with RunFolder({str(tmp_path)!r}):\n    print('locked', flush=True); time.sleep(600)"],
                              cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UserInputError, match=f"pid {holder.pid}"):
        RunFolder(tmp_path).__enter__()
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    with RunFolder(tmp_path):
        pass


# -- ranges -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("override, named", [
    ("method.gate_prop=1.5", "method.gate_prop must be a number in [0, 1), got 1.5"),
    ("optimizer.lr=0", "optimizer.lr must be a number > 0"),
    ("optimizer.lr=-1e-3", "optimizer.lr must be a number > 0"),
    ("optimizer.betas=[0.9]", "optimizer.betas: expected 2 values"),
    ("optimizer.betas=[0.9, 1.0]", "optimizer.betas[1] must be a number in [0, 1)"),
    ("batch_size=1", "batch_size must be an integer >= 2"),
    ("iterations_per_experience=-5", "iterations_per_experience must be an integer >= 1"),
    ("seed=-1", "seed must be an integer in [0, 4294967295]"),
    ("model.hidden=[400, 0]", "model.hidden[1] must be an integer >= 1"),
    ("model.hidden=[]", "model.hidden: expected at least one value"),
    ("model.latent_dim=0", "model.latent_dim must be an integer >= 1"),
    ("method.temperature=0", "method.temperature must be a number > 0"),
    ("method.replay_chunk=0", "method.replay_chunk must be an integer >= 1"),
    ("prior.r=-0.1", "prior.r must be a number >= 0"),
    ("stream.n_experiences=3", "split_mnist supports 5 or 10 experiences, not 3"),
    ("check_finite_every=-1", "check_finite_every must be an integer >= 0"),
])
def test_out_of_range_values_are_refused_before_any_work(tmp_path, capsys, override, named):
    out = tmp_path / "run"
    config = "bir_binarized_gmm.yaml"
    assert main(["run", str(CONFIGS / config), "--out", str(out), "--set", override]) == 2
    assert named in one_line_error(capsys)
    assert not out.exists()  # refused before the run folder was made


def test_every_numeric_config_key_has_a_range():
    def numeric_keys(schema, path=()):
        for key, value in schema.items():
            if isinstance(value, dict):
                yield from numeric_keys(value, path + (key,))
            elif value.kind in (int, float) or (value.kind is list and value.choices == ()):
                yield path + (key,), value

    schemas = [SCHEMA, *({"method": method_keys(name)} for name in method_names())]
    schemas += [{"prior": prior_schema(name)} for name in PRIORS]
    for schema in schemas:
        for path, key in numeric_keys(schema):
            assert key.range is not None, path
    for name in PRIORS:  # the prior's own declaration, which replay.priors.build checks
        numeric = [k for k, v in prior_schema(name).items() if v.kind in (int, float)]
        assert set(numeric) <= set(PRIORS[name].ranges), name


@pytest.mark.parametrize("make", [
    lambda: GenerativeReplayPlugin(mlp_vae((4,), build("gaussian", 2)), lr=0),
    lambda: GenerativeReplayPlugin(mlp_vae((4,), build("gaussian", 2)), temperature=-1),
    lambda: GenerativeReplayPlugin(mlp_vae((4,), build("gaussian", 2)), betas=(0.9, 1.5)),
    lambda: GenerativeReplayPlugin(mlp_vae((4,), build("gaussian", 2)), replay_chunk=0),
    lambda: GenerativeReplayPlugin(mlp_vae((4,), build("gaussian", 2)), check_finite_every=-2),
    lambda: BrainInspiredReplayPlugin(replay_size=0),
    lambda: BrainInspiredReplayPlugin(temperature=0.0),
    lambda: IterationBudget(0),
    lambda: build("cgm", 4, 10, variance=0),
    lambda: build("cg_bpef", 4, 10, anneal_steps=0),
    lambda: build("bernoulli", 4, check_samples=0),
    lambda: BIRModel((4,), 2, build("gmm", 2, 2), hidden=(8,), gate_prop=1.0),
])
def test_plugin_and_prior_arguments_out_of_range(make):
    with pytest.raises(UserInputError) as error:
        make()
    assert "\n" not in str(error.value)


# -- one error type ---------------------------------------------------------------------------------------------
def test_an_internal_error_keeps_its_traceback(mnist_root, tmp_path, monkeypatch):
    """A ValueError from a bug inside training is not turned into a one-line user error."""
    def broken(self, *args, **kwargs):
        raise ValueError("a bug deep inside training")

    monkeypatch.setattr(GenerativeReplayMethod, "draw", broken)
    with pytest.raises(ValueError, match="a bug deep inside training"):
        run_cli(mnist_root, tmp_path, config="gr_gaussian.yaml")


# -- fuzz -------------------------------------------------------------------------------------------------------
FUZZ_EXAMPLES = 200
GARBAGE = st.one_of(
    st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True, width=32), st.booleans(), st.none(),
    st.sampled_from(["", "x", "gmm", "task", "soft", "after", "cuda", "bf16", "split_cifar100", "permuted_mnist",
                     "domain", "bir", "/no/such/file.pt", 10**12, [], {}, "[1, 2"]),
    st.lists(st.integers(-1, 12), max_size=3),
)


def flat_keys(config: dict) -> dict[tuple[str, ...], object]:
    return {(section, key) if isinstance(values, dict) else (section,): value
            for section, values in config.items()
            for key, value in (values.items() if isinstance(values, dict) else [(None, values)])}


def near(value):
    """Valid values for a key, its default first (the near misses, 0, -1, wrong types, come from ``GARBAGE``)."""
    if isinstance(value, bool):
        return st.sampled_from([value, not value])
    if isinstance(value, int):
        return st.sampled_from([min(value, 12), 2, min(value, 12) + 1, 3, 5])
    if isinstance(value, float):
        return st.sampled_from([value, value / 2, value * 2]) if value > 0 else st.floats(0, 1)
    if isinstance(value, list):
        return st.sampled_from([value, [4], [3, 5], [6] * max(len(value), 1)])
    return st.just(value)


@pytest.fixture(scope="module")
def small_mnist(mnist_root):
    """The first 300 training and 100 test images of the real MNIST: the fuzz test exercises the configuration
    surface, not the data path (tested in test_data)."""
    from scenarios import data
    return {train: tuple(t[:300 if train else 100] for t in data.load_mnist(mnist_root, train=train))
            for train in (True, False)}


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(method=st.sampled_from(["naive", "joint", "gr", "bir"]), prior=st.sampled_from(sorted(PRIORS)),
       data=st.data(), missing_config=st.integers(0, 19).map(lambda v: v == 7))
def test_fuzz_every_outcome_is_a_run_or_one_line(small_mnist, monkeypatch, capsys, method, prior, data,
                                                 missing_config):
    """Random mutations of a small valid config (any key of its method and prior, plus unknown keys; values near
    the default or garbage; in the file or as --set): exit 0 with a result, or exit 2 with one line on stderr.
    Any other exception fails the test with its traceback."""
    from scenarios import streams
    monkeypatch.setattr(streams, "load_mnist", lambda root=None, train=True, fetch=True: small_mnist[train])
    config = {"stream": {"name": "split_mnist"}, "method": {"name": method}, "prior": {"name": prior},
              "model": {"hidden": [8], "latent_dim": 4}, "iterations_per_experience": 2, "batch_size": 16,
              "eval_batch_size": 1000, "progress": False}
    keys = flat_keys(resolve(copy.deepcopy(config)) | {"prior": {"name": prior, **prior_parameters(prior)}})
    keys = {key: value for key, value in keys.items() if key not in (("stream", "root"), ("iterations_per_experience",))}
    unknown = st.sampled_from([("bogus",), ("model", "bogus"), ("prior", "bogus")])
    overrides = []
    for _ in range(data.draw(st.integers(1, 2), label="mutations")):
        path = data.draw(st.one_of(*[st.sampled_from(sorted(keys))] * 9, unknown), label="key")
        value = data.draw(st.one_of(*[near(keys.get(path))] * 3, GARBAGE), label="value")
        if data.draw(st.booleans(), label="as --set"):
            text = value if isinstance(value, str) else json.dumps(value)
            overrides += ["--set", f"{'.'.join(path)}={text}"]
        else:
            node = config
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        if not missing_config:  # about one example in 20 names a config file that does not exist
            path.write_text(json.dumps(config))
        capsys.readouterr()
        code = main(["run", str(path), "--out", str(Path(folder) / "run"), *overrides])
        OUTCOMES.append(code)
        if code == 0:
            assert (Path(folder) / "run" / "result.json").exists()
        else:
            assert code == 2
            MESSAGES.append(one_line_error(capsys))


OUTCOMES: list[int] = []
MESSAGES: list[str] = []


def test_fuzz_tried_runs_and_errors():
    """The fuzz test above (run first, in file order) reached both outcomes, so it tests what it claims."""
    if not OUTCOMES:
        pytest.skip("the fuzz test did not run in this session")
    assert OUTCOMES.count(0) >= 10 and OUTCOMES.count(2) >= 10, (OUTCOMES.count(0), OUTCOMES.count(2), MESSAGES[:30])
