"""Files written whole or not at all: what every result, checkpoint and cached model of the project is written with."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator, Optional


@contextmanager
def atomic_file(path: Path | str, verify: Optional[Callable[[Path], None]] = None,
                previous: Optional[Path | str] = None) -> Iterator[IO[bytes]]:
    """A temporary file in ``path``'s folder to write into; on success it is flushed to disk, checked by ``verify``
    and renamed to ``path`` (readers never see a partial file), else removed.

    Args:
        path: the file to write (its folder is created).
        verify: raises if the written file is not what it should be (``path`` is then left as it was).
        previous: where the file that ``path`` held goes, if any (a rotation: ``checkpoint.prev.pt``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    temporary = Path(handle.name)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(temporary)
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (``atomic_file``)."""
    with atomic_file(path) as handle:
        handle.write(data)
