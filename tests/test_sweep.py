"""replay-bench sweep: sweep files checked before anything starts, and real sweeps on a local Ray (tiny runs).

The Ray tests start Ray on this machine only (an embedded local Ray, or a ``ray.cluster_utils.Cluster`` of local
nodes), bound every wait in time and stop what they started.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from replay.bench.cli import main
from replay.bench.config import resolve
from replay.bench.runner import run
from replay.bench.sweep import load_sweep
from tests.helpers import needs_ray
from tests.test_cli import fake_result

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs" / "split_mnist"
TINY = {"iterations_per_experience": 3, "model.hidden": [16], "model.latent_dim": 4, "eval_batch_size": 5000,
        "replay_quality": False, "progress": False}


def sweep_file(tmp_path: Path, mnist_root: Path, name: str = "sweep.yaml", **sections) -> Path:
    data = {"out": str(tmp_path / "runs"),
            "configs": [str(CONFIGS / "gr_gaussian.yaml"), str(CONFIGS / "gr_binarized_gaussian.yaml")],
            "set": {**TINY, "stream.root": str(mnist_root)}, "grid": {"seed": [0, 1]},
            "resources": {"cpus": 1, "threads": 1}, **sections}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def matrix(folder: Path) -> list:
    return json.loads((folder / "result.json").read_text())["accuracy_matrix"]


def direct_run(config: dict, out: Path) -> list:
    """The same config through ``replay-bench run``'s runner, in this process, with one thread as the trials."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(config, out)["accuracy_matrix"]
    finally:
        torch.set_num_threads(threads)


def sweep_process(path: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "replay.bench.cli", "sweep", str(path), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


# -- the sweep file, before anything starts ---------------------------------------------------------------------
def test_a_sweep_expands_configs_times_grid_into_folders_named_by_config(tmp_path, mnist_root):
    sweep = load_sweep(sweep_file(tmp_path, mnist_root))
    assert len(sweep.trials) == 4 and sweep.resources == {"cpus": 1, "threads": 1, "gpus": 0}
    folders = [trial.folder for trial in sweep.trials]
    assert [f.name for f in folders] == ["seed0", "seed1", "seed0", "seed1"]
    assert folders[0].parent == folders[1].parent != folders[2].parent  # one folder per config, seeds inside
    assert folders[2].parent.name.startswith("gr_binarized_gaussian_") and "iterations_per_experience=3" in str(folders[2])
    # the same config written another way (the default r spelled out, another data root) lands in the same folder
    other = load_sweep(sweep_file(tmp_path, tmp_path / "elsewhere", "other.yaml", configs=[
        {"config": str(CONFIGS / "gr_binarized_gaussian.yaml"), "set": {"prior.r": 0.01}}], grid={"seed": [1]}))
    assert other.trials[0].folder == folders[3]


def test_a_run_made_before_a_key_was_added_to_the_defaults_is_found_under_its_old_hash(tmp_path, mnist_root):
    """A BI-R run whose saved config predates ``method.si_c`` (and kept its data root as null) sits in a folder of
    another hash; the sweep takes that folder for the same trial instead of a new one."""
    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "bir_gmm.yaml")], grid={"seed": [0]})
    trial = load_sweep(path).trials[0]
    old = json.loads(json.dumps(trial.config))
    for key in ("si_c", "si_epsilon"):
        del old["method"][key]
    old["stream"]["root"] = None
    folder = trial.folder.parent.with_name(trial.folder.parent.name.rsplit("-", 1)[0] + "-0ldhash0") / "seed0"
    folder.mkdir(parents=True)
    result = json.loads(fake_result(folder / "result.json", "bir", 0, [0.9, 0.9]).read_text())
    (folder / "result.json").write_text(json.dumps({**result, "config": old}))
    assert load_sweep(path).trials[0].folder == folder
    old["optimizer"]["lr"] = 0.5  # another run of the same name is not taken
    (folder / "result.json").write_text(json.dumps({**result, "config": old}))
    assert load_sweep(path).trials[0].folder == trial.folder


@pytest.mark.parametrize("sections, message", [
    ({"grids": {}}, "unknown key 'grids'"),
    ({"resources": {"cpus": 0}}, "resources.cpus must be an integer >= 1"),
    ({"resources": {"memory": 2}}, "resources: unknown key 'memory'"),
    ({"grid": {"seed": 3}}, "grid.seed: expected a non-empty list"),
    ({"configs": []}, "configs: expected a non-empty list"),
    ({"configs": ["nowhere.yaml"]}, "config file nowhere.yaml does not exist"),
    ({"search": {"algorithm": "bayes", "space": {"optimizer.lr": {"uniform": [0.001, 0.01]}}}}, "search.algorithm: 'bayes'"),
    ({"search": {"space": {"optimizer.lr": {"normal": [0, 1]}}}}, "search.space.optimizer.lr: expected one of uniform"),
    ({"search": {"space": {"optimizer.lr": {"uniform": [-1.0, 0.01]}}}}, "optimizer.lr must be a number > 0"),
    ({"scheduler": {"name": "pbt"}}, "scheduler.name: 'pbt' is not allowed"),
    ({"configs": [str(CONFIGS / "gr_binarized_gaussian.yaml")], "grid": {"prior.r": [-1]}},
     "no valid trial (1 rejected; first: prior.r must be a number >= 0"),
])
def test_a_bad_sweep_file_is_refused_in_one_line_before_anything_starts(tmp_path, mnist_root, capsys, sections, message):
    assert main(["sweep", str(sweep_file(tmp_path, mnist_root, **sections))]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert not (tmp_path / "runs").exists()


def test_a_bad_option_is_refused_in_one_line(tmp_path, mnist_root, capsys):
    assert main(["sweep", str(sweep_file(tmp_path, mnist_root)), "--max-concurrent", "0"]) == 2
    error = capsys.readouterr().err
    assert "--max-concurrent must be an integer >= 1, got 0" in error and error.count("\n") == 1


def test_dry_run_lists_trials_and_rejected_grid_points(tmp_path, mnist_root, capsys):
    path = sweep_file(tmp_path, mnist_root, grid={"seed": [0], "method.temperature": [2.0, -1.0]})
    assert main(["sweep", str(path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["new", "new", "rejected", "rejected", "disk:"]
    assert "method.temperature must be a number > 0, got -1.0" in lines[2]
    assert not (tmp_path / "runs").exists()


def test_a_sweep_without_ray_stops_in_one_line_naming_the_extra_and_a_dry_run_needs_no_ray(tmp_path, mnist_root):
    path = sweep_file(tmp_path, mnist_root)
    code = ("import sys; sys.modules['ray'] = None; from replay.bench.cli import main; "
            f"sys.exit(main(['sweep', {str(path)!r}] + sys.argv[1:]))")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    refused = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "replay-bench: sweep needs Ray Tune, which is not installed here: pip install 'genreplay[sweep]'"]
    dry = subprocess.run([sys.executable, "-c", code, "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert dry.returncode == 0 and dry.stdout.splitlines()[0].startswith("new"), dry.stderr
    assert not (tmp_path / "runs").exists()


# -- real sweeps on Ray ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_root):
    """Accuracy matrices of the four tiny configs, made by the runner directly."""
    out = tmp_path_factory.mktemp("direct")
    matrices = {}
    for config_name in ("gr_gaussian", "gr_binarized_gaussian"):
        for seed in (0, 1):
            overrides = [f"{k}={json.dumps(v)}" for k, v in {**TINY, "stream.root": str(mnist_root), "seed": seed}.items()]
            config = resolve(yaml.safe_load((CONFIGS / f"{config_name}.yaml").read_text()), overrides)
            matrices[(config_name, seed)] = direct_run(config, out / config_name / str(seed))
    return matrices


def by_trial(sweep) -> dict:
    """Each trial's folder by (config file, seed)."""
    return {("gr_" + t.config["prior"]["name"], t.config["seed"]): t.folder for t in sweep.trials}


@needs_ray
def test_a_grid_sweep_runs_every_trial_as_replay_bench_run_would_and_a_rerun_runs_nothing(tmp_path, mnist_root,
                                                                                      reference, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative out: the runs land below where the sweep started, not in Tune's folders
    path = sweep_file(tmp_path, mnist_root, out="runs")
    assert main(["sweep", str(path), "--max-concurrent", "2"]) == 0
    output = capsys.readouterr().out
    finished = [line for line in output.splitlines() if line.startswith("[")]
    assert "ray: local" in output and len(finished) == 4 and not any(line.endswith("nan") for line in finished)
    sweep = load_sweep(path)
    assert all(trial.folder.is_relative_to(tmp_path / "runs") for trial in sweep.trials)
    for key, folder in by_trial(sweep).items():
        assert matrix(folder) == reference[key], key
        assert {"checkpoint.pt", "accuracy.csv", "result.json"} <= {p.name for p in folder.iterdir()}
    assert (tmp_path / "runs" / "sweep.csv").exists() and (tmp_path / "runs" / "sweep.png").exists()
    assert main(["sweep", str(path)]) == 0
    again = capsys.readouterr().out
    assert "nothing to run" in again and "ray:" not in again  # Ray is not even started


@needs_ray
def test_a_killed_sweep_refuses_to_restart_without_resume_and_completes_with_it(tmp_path, mnist_root, reference,
                                                                                capsys):
    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "gr_gaussian.yaml")],
                      set={**TINY, "stream.root": str(mnist_root), "iterations_per_experience": 20})
    process = sweep_process(path, "--max-concurrent", "1")
    sweep = load_sweep(path)
    try:
        wait_for(lambda: any((t.folder / "checkpoint.pt").exists() for t in sweep.trials), 240, "a first checkpoint")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert not all((t.folder / "result.json").exists() for t in sweep.trials)
    assert main(["sweep", str(path)]) == 2
    error = capsys.readouterr().err
    assert "unfinished (first:" in error and "add --resume" in error and error.count("\n") == 1
    assert main(["sweep", str(path), "--resume"]) == 0
    capsys.readouterr()
    uninterrupted_root = tmp_path / "uninterrupted"
    for trial in sweep.trials:
        assert matrix(trial.folder) == direct_run(trial.config, uninterrupted_root / trial.folder.relative_to(sweep.out))


@needs_ray
def test_a_trial_that_fails_by_itself_reports_one_line_and_the_others_go_on(tmp_path, mnist_root, capsys):
    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "gr_gaussian.yaml")],
                      grid={"seed": [0], "optimizer.lr": [0.001, 1.0e20]},
                      set={**TINY, "stream.root": str(mnist_root), "check_finite_every": 1})
    assert main(["sweep", str(path)]) == 0
    output = capsys.readouterr().out
    errors = [line for line in output.splitlines() if line.startswith("[") and "error:" in line]
    assert len(errors) == 1 and "loss term" in errors[0] and "is nan" in errors[0]
    good, bad = load_sweep(path).trials
    assert (good.folder / "result.json").exists() and not (bad.folder / "result.json").exists()


@needs_ray
def test_a_trial_whose_node_is_lost_resumes_on_another_node_with_the_same_results(tmp_path, mnist_root):
    from ray.cluster_utils import Cluster

    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "gr_gaussian.yaml")], grid={"seed": [0]},
                      set={**TINY, "stream.root": str(mnist_root), "iterations_per_experience": 25})
    trial = load_sweep(path).trials[0]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    try:
        cluster.wait_for_nodes()
        process = sweep_process(path, "--address", cluster.address)
        try:
            wait_for(lambda: (trial.folder / "checkpoint.pt").exists() and (trial.folder / "node.txt").exists(), 240,
                     "the trial's first checkpoint")
            first_node = (trial.folder / "node.txt").read_text().strip()
            lost = next(node for node in nodes if node.node_id == first_node)
            cluster.remove_node(lost)
            output, _ = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        assert process.returncode == 0, output
        assert (trial.folder / "node.txt").read_text().strip() != first_node  # it finished on the other node
    finally:
        cluster.shutdown()
    assert matrix(trial.folder) == direct_run(trial.config, tmp_path / "uninterrupted")


@needs_ray
def test_a_random_search_with_asha_runs_sampled_configs_in_their_own_folders(tmp_path, mnist_root, capsys):
    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "bir_gmm.yaml")], grid={"seed": [0]},
                      search={"algorithm": "random", "samples": 2, "seed": 0,
                              "space": {"optimizer.lr": {"loguniform": [1.0e-4, 1.0e-2]}}},
                      scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    assert main(["sweep", str(path), "--max-concurrent", "2"]) == 0
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("result.json")]
    lrs = {result["config"]["optimizer"]["lr"] for result in results}
    assert len(capsys.readouterr().out.splitlines()) > 2 and len(lrs) == len(results) >= 1
    assert all(1e-4 <= lr <= 1e-2 for lr in lrs)  # sampled, each run in the folder of its own config
    assert all(f"optimizer.lr={r['config']['optimizer']['lr']}" in str(p) for r, p in
               zip(results, (tmp_path / "runs").rglob("result.json")))


@needs_ray
def test_an_optuna_search_proposes_configs_and_runs_them(tmp_path, mnist_root, capsys):
    pytest.importorskip("optuna", reason="Optuna is an optional extra (pip install optuna)")
    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "gr_gaussian.yaml")], grid={"seed": [0]},
                      search={"algorithm": "optuna", "samples": 2, "seed": 0,
                              "space": {"optimizer.lr": {"loguniform": [1.0e-4, 1.0e-2]}}})
    assert main(["sweep", str(path), "--max-concurrent", "1"]) == 0
    lrs = {json.loads(p.read_text())["config"]["optimizer"]["lr"] for p in (tmp_path / "runs").rglob("result.json")}
    assert len(lrs) == 2 and all(1e-4 <= lr <= 1e-2 for lr in lrs)


def trial_workers(root: int) -> list[int]:
    """Pids of the Ray workers running trials (``ray::ImplicitFunc``) below the process ``root``."""
    parents, names = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                names[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 1)
            if pid == root:
                return True
        return False

    return sorted(pid for pid, name in names.items() if name.startswith("ray::ImplicitFunc") and below(pid))


@needs_ray
def test_a_sweep_whose_workers_are_killed_ten_times_ends_with_the_results_of_an_undisturbed_one(tmp_path, mnist_root):
    """Chaos on a local Ray: a trial's worker killed at random moments (a seeded draw), ten times in a row."""
    import random

    path = sweep_file(tmp_path, mnist_root, configs=[str(CONFIGS / "gr_gaussian.yaml")], max_failures=30,
                      set={**TINY, "stream.root": str(mnist_root), "iterations_per_experience": 20})
    process = sweep_process(path, "--max-concurrent", "2")
    draw, kills = random.Random(0), 0
    try:
        deadline = time.monotonic() + 400
        while kills < 10 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(draw.uniform(0.3, 1.5))
            workers = trial_workers(process.pid)
            if workers:
                os.kill(draw.choice(workers), signal.SIGKILL)
                kills += 1
        output, _ = process.communicate(timeout=400)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert kills == 10, f"the sweep ended after {kills} kills"
    assert process.returncode == 0, output
    sweep = load_sweep(path)
    for trial in sweep.trials:
        assert matrix(trial.folder) == direct_run(trial.config, tmp_path / "undisturbed" / trial.folder.relative_to(sweep.out))
