"""A yardstick for wall times: Avalanche's own ``GenerativeReplay`` on split MNIST, run in the same command.

The reference code's times (van de Ven's BI-R code, run unmodified on one of our 2-core machines: BI-R 213 s for
the whole split-MNIST run, GR about 40 iterations/s) were measured once, beside Avalanche 0.6's
``GenerativeReplay`` (its default generator, an MLP 784-400-400 solver, batch 128, 21 epochs per experience):
264 s. Our machines' speed varies from day to day, so a ratio against those constants measures the machine as
much as the code. Running Avalanche's GR here, now, and scaling the reference figures by how much longer or
shorter it takes than it did beside them estimates what the reference code would take on this machine today:

    reference_here = reference_then * avalanche_here / avalanche_then

This assumes both workloads (fp32 PyTorch training loops of the same size) slow down alike; it is an
estimate, and it says so wherever it is printed. Where a checkout of the reference code is at hand,
``time_command`` times its own run instead, and the estimate is not needed.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from typing import Optional

import numpy as np
import torch
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training import GenerativeReplay as AvalancheGenerativeReplay
from avalanche.training.plugins import EvaluationPlugin

from replay.models import MLPClassifier

#: wall times, in seconds, of whole split-MNIST runs measured together once (see the module's docstring)
MEASURED_SECONDS = {"avalanche_gr": 264.0, "reference_bir": 213.0, "reference_gr": 10_000 / 40.0}
#: epochs per experience of Avalanche's GR in that measurement (about 2000 iterations, as ours)
AVALANCHE_EPOCHS = 21


def run_avalanche_gr(epochs: int = AVALANCHE_EPOCHS, seed: int = 0, root: str = "data") -> dict:
    """Avalanche's ``GenerativeReplay`` on split MNIST (5 experiences) with its defaults and our MLP solver.

    Returns the final average accuracy (class-incremental), the training seconds, the whole protocol's seconds
    (training plus the final evaluation; data loading and set-up excluded, as in our results' ``total_seconds``)
    and the number of solver iterations.
    """
    torch.manual_seed(seed)
    benchmark = SplitMNIST(n_experiences=5, seed=seed, dataset_root=root)
    model = MLPClassifier((1, 28, 28), 10, (400, 400))
    strategy = AvalancheGenerativeReplay(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), train_mb_size=128, train_epochs=epochs,
        eval_mb_size=1000,
        evaluator=EvaluationPlugin(accuracy_metrics(experience=True), loggers=[]))
    start, train_seconds = time.perf_counter(), 0.0
    for experience in benchmark.train_stream:
        started = time.perf_counter()
        strategy.train(experience)
        train_seconds += time.perf_counter() - started
    metrics = strategy.eval(benchmark.test_stream)
    accuracies = [value for name, value in metrics.items() if name.startswith("Top1_Acc_Exp/eval_phase/test_stream/")]
    if len(accuracies) != 5:
        raise RuntimeError(f"expected 5 per-experience accuracies from Avalanche, got {len(accuracies)}")
    return {"accuracy": float(np.mean(accuracies)), "train_seconds": train_seconds,
            "seconds": time.perf_counter() - start, "iterations": strategy.clock.train_iterations}


def scaled_reference(reference_then: float, avalanche_here: float,
                     avalanche_then: float = MEASURED_SECONDS["avalanche_gr"]) -> float:
    """A reference time scaled by this machine's speed today, as Avalanche's GR measures it."""
    if reference_then <= 0 or avalanche_here <= 0 or avalanche_then <= 0:
        raise ValueError("wall times must be positive")
    return reference_then * avalanche_here / avalanche_then


def time_command(command: str, cwd: Optional[str] = None, log: Optional[str] = None) -> float:
    """Whole wall time of a shell command (e.g. the reference code's run from its checkout, start-up included).

    The command's output (stdout and stderr) goes to the file ``log`` (a temporary file when None), not to the
    terminal, so that progress bars cost the same for every command timed. Raises if the command fails, with
    the last lines of its output, so that a broken run is never taken for a fast one.
    """
    with open(log, "w+") if log is not None else tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        completed = subprocess.run(command, shell=True, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            output.seek(0)
            tail = "".join(output.readlines()[-5:]).strip()
            raise RuntimeError(f"command failed with exit status {completed.returncode}: {command}\n{tail}")
    return seconds
