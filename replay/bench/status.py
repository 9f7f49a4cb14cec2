"""``replay-bench status``: where each run under some folders stands (finished, or how far its checkpoint got)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from replay.bench.results import read_result
from replay.bench.rundir import CHECKPOINT, PREVIOUS_CHECKPOINT, RESULT, RunFolder
from replay.bench.config import saved_config
from replay.errors import UserInputError


def run_folders(roots: Iterable[Path | str]) -> list[Path]:
    """Every folder at or below ``roots`` that holds a result or a checkpoint, sorted; a root that is no folder is
    refused in one line."""
    found = set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise UserInputError(f"{root} is not a folder; give the folders that hold runs (e.g. runs/)")
        for name in (RESULT, CHECKPOINT, PREVIOUS_CHECKPOINT):
            found |= {path.parent for path in root.rglob(name)}
    return sorted(found)


def run_status(folder: Path) -> str:
    """One line: ``done`` with the final average accuracy, or ``k/n experiences`` with the average accuracy
    over the experiences trained so far (the last row of the accuracy matrix, up to its diagonal)."""
    if (folder / RESULT).exists():
        result = read_result(folder / RESULT)
        return (f"{folder}: done, final average accuracy {result['final_average_accuracy']:.4f}, "
                f"{result['total_train_seconds'] / 60:.0f} min of training")
    try:
        state, note = RunFolder(folder).load_checkpoint()
    except UserInputError as error:
        return f"{folder}: {error}"
    finished, matrix = state["finished_experiences"], state["accuracy_matrix"]
    total = saved_config(state)["stream"]["n_experiences"]
    so_far = float(np.mean(matrix[-1][:finished]))
    return (f"{folder}: {finished}/{total} experiences, average accuracy so far {so_far:.4f}, "
            f"{sum(state['train_seconds_per_experience']) / 60:.0f} min of training; resumable with --resume"
            + (f" ({note})" if note else ""))


def status_lines(roots: Iterable[Path | str]) -> list[str]:
    folders = run_folders(roots)
    return [run_status(folder) for folder in folders] or ["no runs found"]
