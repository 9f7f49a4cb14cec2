"""Files written whole or not at all: what every result, checkpoint, table, figure and cached model of the project
is written with.

A write goes to a temporary file in the target's folder, is flushed to disk and renamed over the target, so a reader
never sees a partial file and a failed write leaves the previous file as it was. A write the system refuses (a full
disk, a quota, a read-only or foreign folder) removes its temporary file and stops with one ``UserInputError`` line
that names the path, the cause and what to do. Files get the mode ``open()`` would give them (0666 less the umask),
not the temporary file's 0600, so that a collaborator in the group reads a finished run.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from replay.errors import UserInputError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
REFUSED = (errno.EROFS, errno.EACCES, errno.EPERM)


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_error(path: Path, error: OSError, action: str = "write") -> UserInputError:
    """The one line for a refused write: the path, the system's reason, and what to do."""
    if error.errno in FULL:
        advice = "free disk space (or raise the quota) there, then run again with --resume"
    elif error.errno in REFUSED:
        advice = "make the folder writable, or choose another output folder, then run again (with --resume)"
    else:
        advice = "check the folder and the file system, then run again with --resume"
    return UserInputError(f"cannot {action} {path}: {error.strerror or error}; {advice}")


@contextmanager
def atomic_file(path: Path | str, verify: Optional[Callable[[Path], None]] = None,
                previous: Optional[Path | str] = None) -> Iterator[IO[bytes]]:
    """A temporary file in ``path``'s folder to write into; on success it is flushed to disk, checked by ``verify``,
    given the umask's mode and renamed to ``path``, else removed.

    Args:
        path: the file to write (its folder is created).
        verify: raises if the written file is not what it should be (``path`` is then left as it was).
        previous: where the file that ``path`` held goes, if any (a rotation: ``checkpoint.prev.pt``).
    Raises:
        UserInputError: the system refused the write (no space, read-only, permission): the previous file is intact.
    """
    path = Path(path)
    temporary: Optional[Path] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
        temporary = Path(handle.name)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~umask())
        if verify is not None:
            verify(temporary)
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(temporary, path)
    except OSError as error:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise write_error(path, error) from None
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


@contextmanager
def writing_into(folder: Path | str) -> Iterator[None]:
    """Inside the block, a write the system refuses elsewhere than through ``atomic_file`` (a logger's line on a full
    disk) is ``write_error``'s one line about the file, or ``folder`` when the error names none; other errors pass."""
    try:
        yield
    except OSError as error:
        if error.errno not in FULL + REFUSED:
            raise
        raise write_error(Path(error.filename) if error.filename else Path(folder), error) from None


def atomic_write_bytes(path: Path | str, data: bytes, verify: Optional[Callable[[Path], None]] = None,
                       previous: Optional[Path | str] = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (``atomic_file``, whose arguments the others are)."""
    with atomic_file(path, verify, previous) as handle:
        handle.write(data)


def check_room(folder: Path | str, needed: int, what: str) -> None:
    """Before work starts: refuse in one line a folder that cannot be written, or that has less free space than
    ``needed`` bytes.

    Args:
        folder: the output folder (created if missing).
        needed: bytes the work will need there at its peak.
        what: what needs them, for the message (``"two checkpoints of 24.8 MB"``).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test."):
            pass
    except OSError as error:
        raise write_error(folder, error, "write into") from None
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise UserInputError(f"{folder} has {megabytes(free)} free, less than the {megabytes(needed)} of {what}; "
                             "free disk space there or choose another output folder")


def megabytes(size: float) -> str:
    """A size in bytes as ``12.3 MB`` (decimal megabytes, as ``df -H`` prints them)."""
    return f"{size / 1e6:.1f} MB"
