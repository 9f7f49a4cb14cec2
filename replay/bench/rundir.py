"""A run's output folder: one process at a time, never overwritten by mistake, checkpoints that are replaced
only once their successor is written and loads.

Files: ``result.json`` (a finished run), ``checkpoint.pt`` (the last finished experience), ``checkpoint.prev.pt``
(the one before it, the fallback when the last is unreadable; a finished run drops it unless ``checkpoints`` says
otherwise), ``checkpoint.expNNN.pt`` (with ``checkpoints: all``), ``accuracy.csv``, ``log.txt``, and ``.lock``
(held with ``flock`` while a process works in the folder; the kernel releases it when the process dies, so a
killed run never leaves the folder blocked).
"""
from __future__ import annotations

import fcntl
import io
import os
from pathlib import Path
from typing import Any, Optional

import torch

from replay.errors import UserInputError
from replay.files import atomic_write_bytes, write_error

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"
RESULT = "result.json"
ACCURACY_CSV = "accuracy.csv"
LOG = "log.txt"
LOCK = ".lock"
KEPT_CHECKPOINTS = "checkpoint.exp*.pt"  # checkpoints: all
OUTPUTS = (RESULT, CHECKPOINT, PREVIOUS_CHECKPOINT, ACCURACY_CSV, LOG)
CHECKPOINT_KEYS = ("config", "finished_experiences", "accuracy_matrix", "model", "rng")


class RunFolder:
    """The output folder of one run, locked for the lifetime of the ``with`` block.

    Args:
        path: the folder (created if missing).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock: Optional[Any] = None

    def __enter__(self) -> "RunFolder":
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / LOCK, "a+")
        except OSError as error:
            raise write_error(self.path, error, "write into") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserInputError(f"{self.path} is in use by another replay-bench process (pid {holder}); wait for it "
                                 "to end or use another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # -- what the folder holds -----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return (self.path / RESULT).exists()

    @property
    def has_checkpoint(self) -> bool:
        return any((self.path / name).exists() for name in (CHECKPOINT, PREVIOUS_CHECKPOINT))

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Refuse to overwrite a run unless asked: a finished run without ``overwrite`` (with ``resume`` the caller
        reports it as finished), an unfinished one without ``resume`` or ``overwrite``. ``overwrite`` removes the
        run's outputs."""
        if overwrite:
            for name in OUTPUTS:
                (self.path / name).unlink(missing_ok=True)
            for kept in self.path.glob(KEPT_CHECKPOINTS):
                kept.unlink()
            return
        if self.finished and not resume:
            raise UserInputError(f"{self.path} holds a finished run (result in {self.path / RESULT}); use another "
                                 "--out, or --overwrite to run it again")
        if self.has_checkpoint and not resume:
            raise UserInputError(f"{self.path} holds an unfinished run; add --resume to continue it, or --overwrite "
                                 "to start afresh")

    # -- checkpoints ---------------------------------------------------------------------------------------
    def save_checkpoint(self, state: dict, keep_as: Optional[str] = None) -> None:
        """Write ``state`` to a temporary file, check that it loads, then make it ``checkpoint.pt``; the checkpoint
        it replaces becomes ``checkpoint.prev.pt``. At every moment one loadable checkpoint is on disk. The state is
        serialised in memory first, so that a full disk is the file system's refusal (``atomic_file``'s one line).

        Args:
            state: the checkpoint's content.
            keep_as: also keep this checkpoint under this name (a hard link: no second copy on disk).
        """
        data = checkpoint_bytes(state)
        atomic_write_bytes(self.path / CHECKPOINT, data, verify=loads_back, previous=self.path / PREVIOUS_CHECKPOINT)
        if keep_as is not None:
            (self.path / keep_as).unlink(missing_ok=True)
            os.link(self.path / CHECKPOINT, self.path / keep_as)

    def keep_checkpoints(self, which: str) -> None:
        """What a finished run keeps (``checkpoints``): ``last`` drops ``checkpoint.prev.pt``; ``none`` drops both;
        ``all`` keeps them and every experience's (``checkpoint.expNNN.pt``)."""
        dropped = {"last": (PREVIOUS_CHECKPOINT,), "none": (PREVIOUS_CHECKPOINT, CHECKPOINT), "all": ()}[which]
        for name in dropped:
            (self.path / name).unlink(missing_ok=True)

    def load_checkpoint(self) -> tuple[Optional[dict], Optional[str]]:
        """The newest readable checkpoint (None when there is none) and, when it is the fallback, a line saying
        why; raises ``UserInputError`` when checkpoints exist but none can be read."""
        problems = []
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            path = self.path / name
            if not path.exists():
                continue
            try:
                state = read_checkpoint(path)
            except UserInputError as error:
                problems.append(str(error))
                continue
            note = None
            if problems:
                note = (f"{problems[0]}; resuming from {path} ({state['finished_experiences']} experiences "
                        "finished) instead")
            return state, note
        if problems:
            raise UserInputError(f"no readable checkpoint in {self.path}: {'; '.join(problems)}; use --overwrite "
                                 "to start afresh")
        return None, None

    def kept_checkpoint(self) -> str:
        """Where the last good checkpoint is, for messages of a run that stops."""
        for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
            try:
                state = read_checkpoint(self.path / name)
            except (UserInputError, FileNotFoundError):
                continue
            return f"the checkpoint after experience {state['finished_experiences'] - 1} is kept in {self.path / name}"
        return "no experience had finished, so there is no checkpoint"


def read_checkpoint(path: Path) -> dict:
    """A checkpoint's content; a truncated or corrupt file, or one without a run's keys, gives one line."""
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # any unreadable file: truncated zip, pickle garbage, empty file
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise UserInputError(f"{path} is unreadable ({reason})") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise UserInputError(f"{path} is not a replay-bench checkpoint (missing {', '.join(missing)})")
    return state


def checkpoint_bytes(state: dict) -> bytes:
    """A checkpoint as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def loads_back(path: Path) -> None:
    """Raise unless the checkpoint just written to ``path`` loads: a bug or a full disk, never a user's error."""
    try:
        read_checkpoint(path)
    except UserInputError:
        raise RuntimeError(f"the checkpoint written to {path.parent} does not load back") from None
