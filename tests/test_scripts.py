"""The benchmark suite (scripts/bench.py) and the GPU check."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_time_command_times_a_shell_command_and_fails_loudly():
    from scripts.bench import time_command

    assert time_command(f"{sys.executable} -c 'import time; time.sleep(0.2)'") >= 0.2
    with pytest.raises(RuntimeError, match="exit status 3"):
        time_command("exit 3")


def test_the_cifar_projection_takes_the_protocol_iterations_and_grows_the_generative_classifiers_evaluation():
    from scripts.bench import projected_protocol_s

    rows = [{"setup_s": 1.0, "iteration_s": 0.01, "eval_s": 2.0}, {"setup_s": 2.0, "iteration_s": 0.02, "eval_s": 4.0},
            {"setup_s": 4.0, "iteration_s": 0.04, "eval_s": 6.0}]
    # measured: (1 + 5) + 2, (2 + 10) + 4, (4 + 20) + 6; each of 2 more: training the median of 12 and 24, and
    # the evaluation the median of 4 and 6, or the last one's 6 x (k + 1) / 3 for k = 3, 4
    assert projected_protocol_s(rows, 5, 500, eval_grows=False) == pytest.approx(8 + 16 + 30 + 2 * (18 + 5))
    assert projected_protocol_s(rows, 5, 500, eval_grows=True) == pytest.approx(8 + 16 + 30 + 2 * 18 + 8 + 10)
    assert projected_protocol_s(rows[:1], 3, 100, eval_grows=True) == pytest.approx(3 * 2 + 2 + 4 + 6)


def test_time_command_keeps_the_output_off_the_terminal_and_shows_its_tail_on_failure(tmp_path, capfd):
    from scripts.bench import time_command

    log = tmp_path / "run.log"
    time_command("echo progress; echo more >&2", log=str(log))
    assert log.read_text().split() == ["progress", "more"]
    assert capfd.readouterr().out == ""
    with pytest.raises(RuntimeError, match="(?s)exit status 2.*line 9"):
        time_command("for i in 1 2 3 4 5 6 7 8 9; do echo line $i; done; exit 2")


def bench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.bench", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), **kwargs)


def test_bench_speed_times_our_run_as_a_whole_process_against_a_baseline_in_the_same_command(mnist_root, tmp_path):
    out = tmp_path / "speed.json"
    done = bench("speed", "--methods", "bir", "--iterations", "2", "--hidden", "8", "8", "--latent-dim", "4",
                 "--no-avalanche", "--root", str(mnist_root), "--out", str(out),
                 "--reference-command", f"{sys.executable} -c 'import time; time.sleep(0.5)'", check=True)
    run_line = next(line for line in done.stdout.splitlines() if line.startswith("round 1: bir fp32"))
    assert len(re.search(r"per experience \[([^\]]*)\]", run_line).group(1).split(",")) == 5
    assert "as a whole process" in run_line and "the reference code / ours x" in run_line
    assert "median speed-up of bir fp32 over the reference code" in done.stdout
    (row,) = json.loads(out.read_text())
    assert row["run"] == "bir fp32" and row["baselines"]["the reference code"] >= 0.5
    refused = bench("speed", "--methods", "bir", "gr", "--reference-command", "true")
    assert refused.returncode != 0 and "give --methods with a single method" in refused.stderr


def test_bench_protocol_projects_a_config_from_its_first_experiences(mnist_root, tmp_path):
    from scripts.bench import projected_protocol_s

    out = tmp_path / "protocol.json"
    done = bench("protocol", "configs/split_mnist/generative_classifier.yaml", "--root", str(mnist_root), "--iterations",
                 "3", "--experiences", "2", "--set", "method.samples=1", "--set", "model.hidden=[8]", "--threads", "1",
                 "--out", str(out))
    assert done.returncode == 0, done.stderr
    row = json.loads(out.read_text())
    assert (row["method"], row["protocol_iterations"], row["protocol_experiences"]) == ("generative_classifier", 1000, 5)
    assert len(row["experiences"]) == row["measured_experiences"] == 2 and row["hidden"] == [8]
    assert row["projected_protocol_s"] == pytest.approx(projected_protocol_s(row["experiences"], 5, 1000, eval_grows=True))
    assert "5 experiences x 1000 iterations, projected from 2" in done.stdout


def test_bench_refuses_a_count_below_one_in_one_line():
    done = bench("stream", "--iterations", "0")
    assert done.returncode != 0 and done.stderr.strip().splitlines()[-1] == "--iterations must be at least 1"


def test_gpu_check_runs_every_step_on_the_cpu(mnist_root, tmp_path):
    """The GPU check script, tiny and on the CPU: the environment, the device tests, a timed run, the CIFAR-100
    timing, four runs at once; one verdict line per step in its summary, with the step's figures."""
    small = ("--set iterations_per_experience=3 --set model.hidden=[16] --set eval_batch_size=5000 "
             "--set replay_quality=false")
    env = dict(os.environ, DEVICE="cpu", OUT=str(tmp_path), PYTHON=sys.executable, OMP_NUM_THREADS="1",
               REPLAY_DATA=str(mnist_root), WHEELS=str(tmp_path / "no-wheels"), RUN_ARGS=small,
               CIFAR_ARGS="--iterations 2 --experiences 1 --train-per-class 6 --test-per-class 2 --methods bir "
               "--precisions fp32 --threads 1")
    done = subprocess.run(["bash", str(REPO / "scripts/gpu_check.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = {line.split()[1]: line for line in (tmp_path / "summary.txt").read_text().splitlines()
                if line.split()[0] in ("PASS", "FAIL", "TIMEOUT", "SKIP")}
    assert list(verdicts) == ["environment", "cuda_tests", "bir_one_run", "cifar100", "bir_four_runs"]
    assert all(line.startswith("PASS") for line in verdicts.values()), verdicts
    assert "no CUDA" in verdicts["environment"] and "passed" in verdicts["cuda_tests"]
    assert "final average accuracy" in verdicts["bir_one_run"]
    assert "| bir | fp32 |" in verdicts["cifar100"] and " h (no cache " in verdicts["cifar100"]
    assert "runs per hour" in verdicts["bir_four_runs"] and "one at a time" in verdicts["bir_four_runs"]
    assert "5 of 5 steps passed" in (tmp_path / "summary.txt").read_text()
    assert all((tmp_path / f"bir_seed{seed}" / "result.json").exists() for seed in range(5))
    rows = json.loads((tmp_path / "bench_cifar100.json").read_text())
    assert len(rows) == 2 and {row["cache"] for row in rows} == {"off", "on"}
    assert all(row["stream"] == "split_cifar100" and row["train_images"] == 600 and row["batch_size"] == 256
               and row["hidden"] == [2000, 2000] for row in rows)  # the CIFAR protocol, on the files it wrote


def test_bench_stock_split_mnist_runs_our_pipeline_on_normalised_and_unit_pixels_for_the_same_seeds(mnist_root, tmp_path):
    out = tmp_path / "stock.json"
    output = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "stock", "--root", str(mnist_root), "--methods", "gr",
         "--pixels", "normalised", "unit", "--seeds", "0", "--iterations", "2", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1")).stdout
    results = json.loads(out.read_text())
    assert set(results) == {"GR (gaussian), SimpleMLP", "GR (gaussian), SimpleMLP, pixels in [0, 1]"}
    assert all(row["seeds"] == [0] and len(row["accuracy"]) == len(row["average_accuracy"]) == 1
               for row in results.values())
    assert "on stock SplitMNIST (pixels in [0, 1]), seed 0" in output and "| GR (gaussian), SimpleMLP, pixels in [0, 1] | 0 |" in output


def test_bench_stock_split_mnist_summarize_merges_parallel_results_and_pairs_them_by_seed(tmp_path):
    def row(seeds, averages):
        return {"seeds": seeds, "accuracy": averages, "average_accuracy": averages, "seconds": [1.0] * len(seeds)}

    normalised, unit = "GR (gaussian), SimpleMLP", "GR (gaussian), SimpleMLP, pixels in [0, 1]"
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    files[0].write_text(json.dumps({normalised: row([0, 1], [0.90, 0.88]), unit: row([0], [0.91])}))
    files[1].write_text(json.dumps({normalised: row([2], [0.92]), unit: row([1, 2], [0.90, 0.92])}))
    script = [sys.executable, "-m", "scripts.bench", "stock", "--summarize"]
    out = tmp_path / "merged.json"
    output = subprocess.run([*script, *map(str, files), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout
    merged = json.loads(out.read_text())
    assert merged[normalised]["seeds"] == [0, 1, 2] and merged[unit]["average_accuracy"] == [0.91, 0.90, 0.92]
    assert "paired over seeds 0 1 2: +0.0100" in output  # differences 0.01, 0.02, 0.00
    files[1].write_text(json.dumps({normalised: row([1], [0.5])}))
    clash = subprocess.run([*script, *map(str, files)], cwd=REPO, capture_output=True, text=True)
    assert clash.returncode != 0 and "seed 1 of 'GR (gaussian), SimpleMLP' is in another file too" in clash.stderr


def test_bench_scoring_measures_each_s_and_times_whole_runs_beside_the_reference(mnist_root, tmp_path):
    out = tmp_path / "scoring.json"
    reference = f"{sys.executable} -c 'print(\"=> Average accuracy over all 10 classes: 0.{{samples}}\")'"
    done = bench("scoring", "--iterations", "3", "--samples", "1", "2", "--gaussian-samples", "2", "--images", "20",
                 "--whole-runs", "2", "--reference-command", reference, "--root", str(mnist_root), "--out", str(out),
                 check=True)
    rows = json.loads(out.read_text())
    assert [(r["samples"], r["score_likelihood"], r["images"]) for r in rows["per_samples"]] == [
        (1, "trained", 100), (2, "trained", 100), (2, "gaussian", 100)]
    assert all(0 <= r["accuracy"] <= 1 and r["ms_per_image"] > 0 for r in rows["per_samples"])
    (whole,) = rows["whole_runs"]
    assert whole["samples"] == 2 and whole["reference_accuracy"] == 0.2 and whole["ours_s"] > 0
    assert "reference / ours x" in done.stdout
