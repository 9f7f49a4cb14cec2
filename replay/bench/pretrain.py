"""``replay-bench pretrain-conv``: pre-train the CIFAR conv layers on CIFAR-10 (docs/protocols.md).

Recipe: conv layers + fc 1024-2000-2000-10, Adam 1e-4, batch 256, random crop 32 (padding 4) and
horizontal flip, 100 epochs; the conv layers' weights are saved (atomically) for the split CIFAR-100 configs.
The augmentation is done on tensors, batched on the device.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn
from tqdm import tqdm

from replay.files import atomic_write_bytes
from replay.models import ConvFeatureExtractor
from replay.nets import mlp
from scenarios.data import load_cifar
from scenarios.streams import normalize_cifar


def augment(x: Tensor) -> Tensor:
    """Random crop 32 with padding 4 and random horizontal flip, per image, batched on x's device."""
    n = x.shape[0]
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (n,), device=x.device), torch.randint(0, 9, (n,), device=x.device)
    cropped = _crop(padded, dy, dx)
    flip = torch.rand(n, device=x.device) < 0.5
    return torch.where(flip.view(n, 1, 1, 1), cropped.flip(3), cropped)


def _crop(padded: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    n, c = padded.shape[:2]
    base = torch.arange(32, device=padded.device)
    rows = (dy.view(n, 1) + base).view(n, 1, 32, 1).expand(n, c, 32, 40)
    picked = padded.gather(2, rows)
    cols = (dx.view(n, 1) + base).view(n, 1, 1, 32).expand(n, c, 32, 32)
    return picked.gather(3, cols)


def pretrain_conv(out: Path, root: Optional[str] = "data", epochs: int = 100, device: str = "cpu", seed: int = 0,
                  batch_size: int = 256, lr: float = 1e-4, progress: bool = True) -> float:
    """Train and save the conv layers; returns the CIFAR-10 test accuracy of the full network."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    train_x, train_y = load_cifar("cifar10", root, train=True)
    test_x, test_y = load_cifar("cifar10", root, train=False)
    train_x, train_y = normalize_cifar(train_x).to(dev), train_y.to(dev)
    test_x, test_y = normalize_cifar(test_x).to(dev), test_y.to(dev)
    conv = ConvFeatureExtractor()
    model = nn.Sequential(conv, mlp([1024, 2000, 2000]), nn.Linear(2000, 10)).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(len(train_y) // batch_size, 1)
    for _ in tqdm(range(epochs), desc="pretrain-conv", disable=not progress):
        model.train()
        order = torch.randperm(len(train_y), device=dev)
        for i in range(steps):
            index = order[i * batch_size: (i + 1) * batch_size]
            loss = nn.functional.cross_entropy(model(augment(train_x[index])), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum())
                      for i in range(0, len(test_y), 1000))
    buffer = io.BytesIO()
    torch.save(conv.layers.state_dict(), buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return correct / len(test_y)
