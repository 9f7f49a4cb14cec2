"""The replay-bench command: results, resume after a kill, plots, compare, errors, the CIFAR path end to end."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from replay.bench.cli import main
from replay.bench.results import REQUIRED_KEYS, read_result
from tests.helpers import synthetic_cifar

REPO = Path(__file__).resolve().parent.parent
SMALL = ["--set", "model.hidden=[32, 32]", "--set", "model.latent_dim=8", "--set", "progress=false",
         "--set", "eval_batch_size=5000", "--set", "replay_quality=false"]


def cli(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "replay.bench.cli", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_run_writes_a_complete_result(mnist_root, tmp_path):
    out = tmp_path / "run"
    code = main(["run", str(REPO / "configs/split_mnist/bir_binarized_gmm.yaml"), "--seed", "4", "--out", str(out),
                 "--set", f"stream.root={mnist_root}", "--set", "iterations_per_experience=10", "--precision", "bf16", *SMALL])
    assert code == 0
    result = read_result(out / "result.json")
    assert set(REQUIRED_KEYS) <= set(result)
    assert result["method"] == "bir" and result["prior"] == "binarized_gmm" and result["prior_params"]["r"] == 0.002
    assert result["stream"] == "split_mnist" and result["seed"] == 4
    matrix = result["accuracy_matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert result["final_average_accuracy"] == pytest.approx(sum(matrix[-1]) / 5)
    assert result["average_accuracy_per_experience"][-1] == pytest.approx(result["final_average_accuracy"])
    assert result["backward_transfer"] == pytest.approx(sum(matrix[4][j] - matrix[j][j] for j in range(4)) / 4)
    assert result["average_forgetting"] == pytest.approx(
        sum(max(matrix[i][j] for i in range(j, 4)) - matrix[4][j] for j in range(4)) / 4)
    initial = result["initial_accuracy"]  # the untrained model, evaluated before the first experience
    assert len(initial) == 5 and result["forward_transfer"] == pytest.approx(-sum(initial[1:]) / 4)
    assert all(matrix[i][j] == 0.0 for i in range(5) for j in range(i + 1, 5))  # unseen classes never predicted
    assert len(result["train_seconds_per_experience"]) == 5 and result["iterations_per_experience"] == 10
    train, evaluation = result["train_seconds_per_experience"], result["eval_seconds_per_experience"]
    assert len(evaluation) == 5 and all(s > 0 for s in evaluation)
    assert result["total_seconds"] == pytest.approx(sum(train) + sum(evaluation))
    assert result["seconds_per_iteration"] == pytest.approx(1 / result["iterations_per_second"])
    assert result["environment"]["threads"] >= 1 and result["config"]["model"]["hidden"] == [32, 32]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert result["environment"]["git_commit"] == (head or None)  # the code that produced it (None outside git)
    assert result["config"]["precision"] == "bf16"
    losses = result["replay_losses_per_experience"]
    assert len(losses) == 5 and set(losses[0]) == {"classification_current", "recon_current", "reg_current"}
    assert all({"classification_replay", "recon_replay", "reg_replay"} <= set(terms) for terms in losses[1:])
    assert "ReplayLoss_Exp/recon_replay/train_phase/train_stream/Exp004" in (out / "log.txt").read_text()
    shares = result["replay_shares_per_experience"]
    assert shares[0] is None and [len(row) for row in shares[1:]] == [1, 2, 3, 4]
    assert all(sum(row) == pytest.approx(1.0) for row in shares[1:])
    assert "ReplayShare_Exp/FromExp003/train_phase/train_stream/Exp004" in (out / "log.txt").read_text()
    assert (out / "checkpoint.pt").exists() and (out / "log.txt").stat().st_size > 0
    with open(out / "accuracy.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25
    assert all(float(row["accuracy"]) == pytest.approx(matrix[int(row["after_experience"])][int(row["eval_experience"])],
                                                       abs=1e-6) for row in rows)


def test_resume_after_kill_gives_the_same_matrix(mnist_root, tmp_path):
    args = [str(REPO / "configs/split_mnist/gr_binarized_gaussian.yaml"), "--set", f"stream.root={mnist_root}",
            "--set", "iterations_per_experience=60", *SMALL]
    full = cli("run", *args, "--out", str(tmp_path / "full"))
    assert full.wait(timeout=600) == 0, full.stdout.read()
    killed = cli("run", *args, "--out", str(tmp_path / "killed"))
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 600
    while time.time() < deadline:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=False)["finished_experiences"] >= 2:
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "result.json").exists(), "the run finished before it could be killed"
    resumed = cli("run", *args, "--out", str(tmp_path / "killed"), "--resume")
    output = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, output
    assert "after experience 0:" not in output and "after experience 4:" in output  # it really resumed
    first = json.loads((tmp_path / "full" / "result.json").read_text())
    second = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert second["accuracy_matrix"] == first["accuracy_matrix"]
    assert second["replay_losses_per_experience"] == first["replay_losses_per_experience"]  # kept in the checkpoint
    assert second["replay_shares_per_experience"] == first["replay_shares_per_experience"]


def test_resume_accepts_a_checkpoint_from_before_a_config_key_existed(mnist_root, tmp_path):
    args = ["run", str(REPO / "configs/split_mnist/naive.yaml"), "--out", str(tmp_path), "--set",
            f"stream.root={mnist_root}", "--set", "iterations_per_experience=3", *SMALL]
    assert main(args) == 0
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del checkpoint["config"]["precision"]  # as written before the key was added
    del checkpoint["eval_seconds_per_experience"]  # and before evaluation was timed
    del checkpoint["replay_losses_per_experience"]  # and before the replay losses were recorded
    del checkpoint["replay_shares_per_experience"]  # and their shares
    checkpoint["finished_experiences"] = 4  # as if killed during the last experience
    checkpoint["accuracy_matrix"] = checkpoint["accuracy_matrix"][:4]
    checkpoint["train_seconds_per_experience"] = checkpoint["train_seconds_per_experience"][:4]
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    (tmp_path / "result.json").unlink()  # killed before the end
    assert main(args + ["--resume"]) == 0
    result = read_result(tmp_path / "result.json")
    assert len(result["eval_seconds_per_experience"]) == 5 and result["total_seconds"] is None
    assert len(result["accuracy_matrix"]) == len(result["train_seconds_per_experience"]) == 5
    assert result["replay_losses_per_experience"] == result["replay_shares_per_experience"] == [None] * 5
    assert main(args + ["--set", "model.latent_dim=9", "--resume"]) != 0  # a real change is still refused


def test_status_tells_finished_from_partial_runs(mnist_root, tmp_path, capsys):
    done = tmp_path / "grid" / "naive" / "seed0"
    assert main(["run", str(REPO / "configs/split_mnist/naive.yaml"), "--out", str(done), "--set",
                 f"stream.root={mnist_root}", "--set", "iterations_per_experience=3", *SMALL]) == 0
    partial = tmp_path / "grid" / "naive" / "seed1"
    partial.mkdir()
    checkpoint = torch.load(done / "checkpoint.pt", weights_only=False)
    checkpoint.update(finished_experiences=2, accuracy_matrix=[[0.9, 0, 0, 0, 0], [0.5, 0.7, 0, 0, 0]])
    torch.save(checkpoint, partial / "checkpoint.pt")
    final = read_result(done / "result.json")["final_average_accuracy"]
    capsys.readouterr()
    assert main(["status", str(tmp_path / "grid")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{done}: done, final average accuracy {final:.4f}")
    assert lines[1].startswith(f"{partial}: 2/5 experiences, average accuracy so far 0.6000")


def fake_result(path: Path, method: str, seed: int, last: list[float], prior: str = "gmm",
                prior_params: dict | None = None, precision: str = "fp32", stream: str = "split_mnist",
                method_options: dict | None = None) -> Path:
    n = len(last)
    matrix = [[0.9 if j <= i else 0.0 for j in range(n)] for i in range(n - 1)] + [last]
    config = {"precision": precision, **({"method": {"name": method, **method_options}} if method_options else {})}
    result = {"schema": "replay-bench/result/v1", "config": config, "method": method,
              "prior": prior, "prior_params": prior_params or {"soft": "mc"}, "stream": stream, "n_experiences": n, "seed": seed,
              "accuracy_matrix": matrix, "final_average_accuracy": sum(last) / n,
              "train_seconds_per_experience": [1.0] * n, "total_train_seconds": float(n), "iterations_per_experience": 10,
              "iterations_per_second": 50.0, "environment": {}}
    path.write_text(json.dumps(result))
    return path


def test_plot_ymin_zooms_accuracy_axes_only(tmp_path):
    from replay.bench.plots import make_figures
    from replay.bench.results import read_result

    files = [fake_result(tmp_path / f"{m}.json", m, 0, [0.9, 0.95, 0.97]) for m in ("gr", "bir")]
    figures = make_figures([read_result(f) for f in files], ymin=0.8)
    accuracy_axes = figures["comparison"].axes + [ax for ax in figures["tasks"].axes if ax.get_visible()]
    heatmaps = [ax for ax in figures["matrix"].axes if ax.images]
    assert len(accuracy_axes) == 4 and len(heatmaps) == 2  # average curve, bars, two runs' per-task curves; two matrices
    assert all(ax.get_ylim() == (0.8, 1.0) for ax in accuracy_axes)
    assert all(ax.images[0].get_clim() == (0, 1) for ax in heatmaps)


def test_plot_and_compare(tmp_path, capsys):
    files = [fake_result(tmp_path / f"{m}{s}.json", m, s, [0.5 + 0.1 * s, 0.8, 0.9]) for m in ("gr", "bir") for s in (0, 1)]
    for suffix in ("png", "svg"):
        assert main(["plot", *map(str, files), "--out", str(tmp_path / f"fig.{suffix}")]) == 0
        assert (tmp_path / f"fig.{suffix}").stat().st_size > 10_000
    assert main(["plot", str(files[0]), "--out", str(tmp_path / "single.png")]) == 0
    capsys.readouterr()
    assert main(["plot", *map(str, files), "--ymin", "1.5", "--out", str(tmp_path / "bad.png")]) == 2
    assert capsys.readouterr().err.strip() == "replay-bench: --ymin must be in [0, 1), got 1.5"
    assert not (tmp_path / "bad.png").exists()
    assert main(["compare", *map(str, files)]) == 0
    table = capsys.readouterr().out
    assert ("| bir | gmm | split_mnist | 0,1 | 0.7500 ± 0.0236 | -0.2250 ± 0.0354 | 0.2250 ± 0.0354 | 0.550 | 0.800 | 0.900 "
            "| 50.0 |") in table
    assert table.count("\n") == 4  # header, rule, two rows


def test_compare_writes_one_csv_row_per_run(tmp_path, capsys):
    files = [fake_result(tmp_path / "a.json", "gr", 1, [0.6, 0.8, 0.9], "binarized_gaussian", {"r": 0.01}),
             fake_result(tmp_path / "b.json", "bir", 0, [0.7, 0.9], precision="bf16", stream="permuted_mnist"),
             fake_result(tmp_path / "c.json", "gr", 0, [0.5, 0.8, 0.9], "binarized_gaussian", {"r": 0.01})]
    assert main(["compare", *map(str, files), "--csv", str(tmp_path / "runs.csv")]) == 0
    assert capsys.readouterr().out.strip().endswith(f"wrote {tmp_path / 'runs.csv'} (3 runs)")
    with open(tmp_path / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["method"], r["precision"], r["replay_chunk"], r["prior_params"], r["seed"]) for r in rows] == [
        ("bir", "bf16", "1", "", "0"), ("gr", "fp32", "1", "r=0.01", "0"), ("gr", "fp32", "1", "r=0.01", "1")]
    assert float(rows[1]["final_average_accuracy"]) == pytest.approx(2.2 / 3, abs=1e-6)
    assert [rows[0][f"task_{j}"] for j in (1, 2, 3)] == ["0.700000", "0.900000", ""]  # a shorter stream
    assert rows[2]["task_1"] == "0.600000" and rows[2]["total_train_seconds"] == "3.0"
    # diagonal 0.9: BWT ((0.6 - 0.9) + (0.8 - 0.9)) / 2, forgetting the same (every earlier best is 0.9)
    assert float(rows[2]["backward_transfer"]) == pytest.approx(-0.2) and float(rows[2]["average_forgetting"]) == pytest.approx(0.2)


def test_compare_reports_transfer_and_intransigence_against_a_reference(tmp_path, capsys):
    runs = [fake_result(tmp_path / f"gr{seed}.json", "gr", seed, [0.6, 0.8, 0.9]) for seed in (0, 1)]
    joint = [fake_result(tmp_path / f"joint{seed}.json", "joint", seed, [0.95, 0.95, 0.95]) for seed in (0, 1)]
    for path in joint:  # the reference learns each experience to 0.95
        result = json.loads(path.read_text())
        result["accuracy_matrix"] = [[0.95 if j <= i else 0.0 for j in range(3)] for i in range(3)]
        path.write_text(json.dumps(result))
    assert main(["compare", *map(str, runs), "--reference", *map(str, joint)]) == 0
    header, _, row = capsys.readouterr().out.strip().splitlines()
    assert "| BWT | forgetting | intransigence |" in header
    # BWT -0.2 and forgetting 0.2 on both seeds; intransigence mean(0.95 - [0.9, 0.9, 0.9]) = 0.05
    assert "| -0.2000 ± 0.0000 | 0.2000 ± 0.0000 | 0.0500 ± 0.0000 |" in row


def test_compare_tells_apart_prior_parameters_and_precision(tmp_path, capsys):
    defaults = {"variance": 0.02, "lam": 1000.0}
    files = [fake_result(tmp_path / "a.json", "bir", 0, [0.5], "cgm", defaults),
             fake_result(tmp_path / "b.json", "bir", 0, [0.7], "cgm", {**defaults, "variance": 1.0}),
             fake_result(tmp_path / "c.json", "bir", 0, [0.6], "cgm", defaults, precision="bf16"),
             fake_result(tmp_path / "d.json", "gr", 0, [0.9], "binarized_gaussian", {"r": 0.01}),
             fake_result(tmp_path / "e.json", "bir", 0, [0.6], "cgm", defaults, precision="bf16",
                         method_options={"replay_chunk": 16}),
             fake_result(tmp_path / "f.json", "bir", 1, [0.6], "cgm", defaults, method_options={"replay_chunk": 1})]
    capsys.readouterr()
    assert main(["compare", *map(str, files)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [row.split(" | ")[:2] + [row.split(" | ")[3]] for row in rows] == [
        ["| bir", "cgm", "0,1"], ["| bir", "cgm (variance=1.0)", "0"], ["| bir (bf16)", "cgm", "0"],
        ["| bir (bf16, replay_chunk 16)", "cgm", "0"],
        ["| gr", "binarized_gaussian (r=0.01)", "0"]]  # r is shown even at its default


def test_paired_reports_the_per_seed_difference_its_interval_and_the_t_test(tmp_path, capsys):
    from scipy import stats

    base, other = tmp_path / "gaussian", tmp_path / "binarized"
    accuracies = {0: (0.90, 0.93), 1: (0.92, 0.93), 2: (0.88, 0.86), 3: (0.91, 0.95)}
    for seed, (a, b) in accuracies.items():
        (base / f"seed{seed}").mkdir(parents=True)
        fake_result(base / f"seed{seed}" / "result.json", "gr", seed, [a], "gaussian", {})  # a run folder
        other.mkdir(exist_ok=True)
        fake_result(other / f"seed{seed}.json", "gr", seed, [b], "binarized_gaussian", {"r": 0.01})  # results/
    fake_result(other / "seed9.json", "gr", 9, [0.5], "binarized_gaussian", {"r": 0.01})  # no partner: left out
    capsys.readouterr()
    assert main(["paired", str(base), str(other)]) == 0
    out = capsys.readouterr().out
    diffs = [0.03, 0.01, -0.02, 0.04]
    mean, se = sum(diffs) / 4, (sum((d - 0.015) ** 2 for d in diffs) / 3) ** 0.5 / 2
    t_975_df3 = 3.182446  # Student's t table, two-sided 95%, 3 degrees of freedom
    p_value = stats.ttest_rel([b for _, b in accuracies.values()], [a for a, _ in accuracies.values()]).pvalue
    assert "| 3 | 0.9100 | 0.9500 | +0.0400 |" in out and "| 9 |" not in out
    assert (f"over 4 seeds: {mean:+.4f} ± {se:.4f} (standard error); 95% interval "
            f"[{mean - t_975_df3 * se:+.4f}, {mean + t_975_df3 * se:+.4f}]; paired t-test p = {p_value:.3f}") in out
    with pytest.raises(ValueError, match="at least 2 seeds run by both; common seeds: \\[9\\]"):
        from replay.bench.compare import paired_difference
        from replay.bench.results import results_in
        paired_difference(results_in(other), [r for r in results_in(other) if r["seed"] == 9])
    capsys.readouterr()
    assert main(["paired", str(base), str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip().endswith("no seed*/result.json or seed*.json in " + str(tmp_path / "missing"))


def test_cli_errors_are_one_line_and_come_before_work(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stream: {name: split_mnist}\nmethod: {name: bir, gating: maybe}\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert error.strip() == "replay-bench: method.gating: expected bool, got str ('maybe')"
    assert not (tmp_path / "x").exists()
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "--set", "prior.name=nope"]) == 2
    assert "unknown prior 'nope'" in capsys.readouterr().err
    assert main(["run", str(REPO / "configs/split_cifar100/bir_gmm.yaml"), "--set", "model.conv_weights=/nowhere.pt",
                 "--out", str(tmp_path / "y")]) == 2
    assert "model.conv_weights: /nowhere.pt not found; create it with 'replay-bench pretrain-conv" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "none.json"), "--out", str(tmp_path / "f.png")]) == 2


def test_cifar_path_end_to_end_on_synthetic_files(tmp_path, capsys):
    synthetic_cifar(tmp_path, "cifar10", 10, 8)
    synthetic_cifar(tmp_path, "cifar100", 100, 4)
    weights = tmp_path / "conv.pt"
    assert main(["pretrain-conv", "--root", str(tmp_path), "--out", str(weights), "--epochs", "1", "--quiet"]) == 0
    assert weights.exists()
    smaller = {"bir_gmm": "method.gate_prop=0.7", "bir_si": "method.gate_prop=0.6",
               "gr_binarized_gaussian": "method.generator_hidden=[16]"}
    for config, setting in smaller.items():
        matrices = []
        for cache in ("true", "false"):  # frozen features computed once, or a conv pass per batch
            out = tmp_path / f"{config}_{cache}"
            assert main(["run", str(REPO / f"configs/split_cifar100/{config}.yaml"), "--out", str(out),
                         "--set", f"stream.root={tmp_path}", "--set", f"model.conv_weights={weights}",
                         "--set", "iterations_per_experience=2", "--set", "batch_size=8", "--set", setting,
                         "--set", f"model.feature_cache={cache}", *SMALL]) == 0, capsys.readouterr()
            result = read_result(out / "result.json")
            assert len(result["accuracy_matrix"]) == 10 and result["stream"] == "split_cifar100"
            matrices.append(result["accuracy_matrix"])
        assert np.allclose(matrices[0], matrices[1], atol=0.02)
    assert read_result(tmp_path / "bir_gmm_true" / "result.json")["config"]["method"]["si_c"] == 0.0
    si = read_result(tmp_path / "bir_si_true" / "result.json")["config"]["method"]
    assert (si["si_c"], si["gate_prop"]) == (1e8, 0.6)


def test_shares_averages_the_seeds_that_recorded_them_and_draws_one_panel_per_configuration(tmp_path, capsys):
    def with_shares(path, method, seed, shares):
        result = json.loads(fake_result(path, method, seed, [0.9, 0.9, 0.9, 0.9]).read_text())
        result["replay_shares_per_experience"] = shares
        path.write_text(json.dumps(result))
        return str(path)

    files = [with_shares(tmp_path / "gr0.json", "gr", 0, [None, [1.0], [0.8, 0.2], [0.6, 0.3, 0.1]]),
             with_shares(tmp_path / "gr1.json", "gr", 1, [None, [1.0], [0.6, 0.4], [0.4, 0.3, 0.3]]),
             with_shares(tmp_path / "gr2.json", "gr", 2, [None, None, None, None]),  # resumed from an older checkpoint
             with_shares(tmp_path / "bir0.json", "bir", 0, [None, [1.0], [0.5, 0.5], [0.3, 0.4, 0.3]])]
    from replay.bench.results import read_result
    from replay.bench.shares import mean_shares
    means = mean_shares([read_result(f) for f in files[:3]])
    assert sorted(means) == [1, 2, 3] and means[2] == pytest.approx([0.7, 0.3])
    capsys.readouterr()
    assert main(["shares", *files, "--out", str(tmp_path / "shares.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| bir | gmm | 4 | 0.300 0.400 0.300 | 0.90 |"
    assert lines[3] == "| gr | gmm | 4 | 0.500 0.300 0.200 | 0.60 |"  # seeds 0 and 1 averaged; the smallest is 0.2 x 3
    assert lines[4] == f"wrote {tmp_path / 'shares.png'}" and (tmp_path / "shares.png").stat().st_size > 10_000
    no_shares = str(fake_result(tmp_path / "old.json", "gr", 0, [0.9, 0.9]))
    assert main(["shares", no_shares]) == 2
    assert "none of these results recorded replay shares" in capsys.readouterr().err
    assert main(["shares", *files, "--out", str(tmp_path / "shares.jpg")]) == 2
    assert capsys.readouterr().out == ""  # a bad figure path stops it before the table is printed
