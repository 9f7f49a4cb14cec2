"""Runs on a full or read-only disk, file modes under the user's umask, and what a finished run keeps.

The full and read-only file systems are small tmpfs mounts made by the test (skipped where mounting is not allowed).
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from replay.bench.cli import main
from replay.bench.config import resolve
from replay.bench.rundir import read_checkpoint
from replay.bench.runner import run
from replay.bench.sweep import load_sweep
from replay.bench.tune import describe
from replay.errors import UserInputError
from replay.files import atomic_write_bytes

REPO = Path(__file__).resolve().parent.parent
SMALL = {"iterations_per_experience": 3, "model": {"hidden": [32], "latent_dim": 4}, "eval_batch_size": 5000,
         "replay_quality": False, "progress": False, "method": {"name": "gr"}, "prior": {"name": "gaussian"}}


@pytest.fixture
def mount(tmp_path):
    """``mount(size, read_only=False)``: a tmpfs of ``size`` at a fresh folder; unmounted at the end."""
    made = []

    def make(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"fs{len(made)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
        made.append(point)
        return point

    yield make
    for point in made:
        subprocess.run(["umount", "-l", str(point)], check=False)


def config(mnist_root: Path, **changes) -> dict:
    return resolve({**SMALL, "stream": {"root": str(mnist_root)}, **changes})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock")


def test_a_disk_that_fills_mid_run_stops_it_in_one_line_with_the_last_checkpoint_intact_and_resume_finishes(
        mnist_root, mount):
    disk = mount("8m")
    out, filler = disk / "run", disk / "filler"
    cfg = config(mnist_root)

    def fill(finished: int, record) -> None:  # another job takes the disk after the first experience
        if finished == 1:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            filler.write_bytes(bytes(free - 64 * 1024))

    with pytest.raises(UserInputError) as error:
        run(cfg, out, on_experience=fill)
    message = str(error.value)
    assert message.startswith(f"cannot write {out / 'checkpoint.pt'}: No space left on device; free disk space")
    assert "--resume" in message and "\n" not in message
    assert read_checkpoint(out / "checkpoint.pt")["finished_experiences"] == 1
    assert leftovers(out) == []  # no temporary file of the failed write
    filler.unlink()
    result = run(cfg, out, resume=True)
    assert len(result["accuracy_matrix"]) == 5


def test_a_disk_too_small_for_two_checkpoints_is_refused_before_the_run_starts(mnist_root, mount, capsys):
    disk = mount("600k")
    code = main(["run", "--out", str(disk / "run"), "--set", f"stream.root={mnist_root}", "--set", "method.name=gr",
                 "--set", "prior.name=gaussian", "--set", "iterations_per_experience=3", "--set", "progress=false"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0
    assert f"{disk / 'run'} has" in error and "less than the" in error and "of two checkpoints of about 24.8 MB" in error
    assert not (disk / "run" / "checkpoint.pt").exists()


def test_a_read_only_folder_is_refused_in_one_line(mnist_root, mount, capsys):
    disk = mount("8m", read_only=True)
    with pytest.raises(UserInputError, match=r"^cannot write into .*: Read-only file system; make the folder writable"):
        run(config(mnist_root), disk)
    with pytest.raises(UserInputError, match=r"^cannot write .*table\.csv: Read-only file system"):
        atomic_write_bytes(disk / "table.csv", b"a,b\n")


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_files_get_the_users_umask(mnist_root, tmp_path, mask, mode):
    previous = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "a.json", b"{}")
        run(config(mnist_root, iterations_per_experience=1), tmp_path / "run")
    finally:
        os.umask(previous)
    for path in (tmp_path / "a.json", tmp_path / "run" / "result.json", tmp_path / "run" / "checkpoint.pt",
                 tmp_path / "run" / "accuracy.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


@pytest.mark.parametrize("kept, names", [
    ("last", ["checkpoint.pt"]), ("none", []),
    ("all", ["checkpoint.exp001.pt", "checkpoint.exp002.pt", "checkpoint.exp003.pt", "checkpoint.exp004.pt",
             "checkpoint.exp005.pt", "checkpoint.prev.pt", "checkpoint.pt"]),
])
def test_what_a_finished_run_keeps_is_a_choice(mnist_root, tmp_path, kept, names):
    out = tmp_path / kept
    run(config(mnist_root, iterations_per_experience=1, checkpoints=kept), out)
    assert sorted(p.name for p in out.glob("checkpoint*.pt")) == names
    if kept == "all":  # hard links: the last experience's copy is the checkpoint itself
        assert (out / "checkpoint.exp005.pt").stat().st_ino == (out / "checkpoint.pt").stat().st_ino


def test_a_sweeps_dry_run_says_what_its_runs_will_keep_on_disk(tmp_path, mnist_root):
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"out": str(tmp_path / "runs"), "configs": [str(REPO / "configs/split_mnist/gr_gaussian.yaml")],
                                    "set": {"stream.root": str(mnist_root)}, "grid": {"seed": [0, 1, 2]}}))
    lines = describe(load_sweep(path))
    assert lines[-1] == ("disk: a checkpoint of about 24.8 MB to 24.8 MB per run (about 49.5 MB while a run writes); "
                         "the 3 runs keep about 74.3 MB once finished (checkpoints: last keeps one per run; set "
                         "checkpoints=none to keep none)")


def test_a_write_refused_outside_the_atomic_writes_is_one_line_too(mount):
    from replay.files import writing_into

    disk = mount("64k")
    with pytest.raises(UserInputError, match=rf"^cannot write {disk}: No space left on device; free disk space"):
        with writing_into(disk), open(disk / "log.txt", "wb") as log:
            log.write(bytes(1 << 20))
    with pytest.raises(ZeroDivisionError):  # anything else keeps its traceback
        with writing_into(disk):
            1 / 0
