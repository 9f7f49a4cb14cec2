"""Result files: atomic JSON and CSV writes, the result schema, the environment record."""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from replay.errors import UserInputError
from replay.files import atomic_write_bytes

SCHEMA = "replay-bench/result/v1"
REQUIRED_KEYS = (
    "schema", "config", "method", "prior", "stream", "seed", "accuracy_matrix", "final_average_accuracy",
    "train_seconds_per_experience", "iterations_per_experience", "environment",
)


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (comma-separated, quoted where needed) with a header line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_accuracy_csv(path: Path, matrix: Sequence[Sequence[float]]) -> None:
    """The accuracy matrix in long form, one row per (training experience, evaluated experience): the file
    a data frame reads directly. Rewritten after every experience, so a partial run has its curves too."""
    rows = ((i, j, f"{acc:.6f}") for i, row in enumerate(matrix) for j, acc in enumerate(row))
    atomic_write_bytes(path, csv_text(("after_experience", "eval_experience", "accuracy"), rows).encode())


def read_result(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"result file {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path} is not a JSON result file ({error})") from None
    missing = [k for k in REQUIRED_KEYS if k not in data] if isinstance(data, dict) else list(REQUIRED_KEYS)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or missing:
        raise UserInputError(f"{path} is not a {SCHEMA} result (missing {missing or ['schema']})")
    return data


def results_in(folder: Path | str) -> list[dict]:
    """The results of one configuration: ``seed*/result.json`` (a run folder) or ``seed*.json`` (``results/``)."""
    folder = Path(folder)
    paths = sorted(folder.glob("seed*/result.json")) + sorted(folder.glob("seed*.json"))
    if not paths:
        raise UserInputError(f"no seed*/result.json or seed*.json in {folder}")
    return [read_result(p) for p in paths]


def source_version() -> dict[str, Any]:
    """The git commit of this package's source and whether tracked files differ from it (None outside a git
    checkout, e.g. an installed wheel): a result can then be traced to the code that produced it."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    try:
        return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def environment(device: torch.device) -> dict[str, Any]:
    import avalanche

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "avalanche": avalanche.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        **source_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
