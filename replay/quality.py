"""What the generator replays: class coverage, Fréchet distance, precision / recall / density / coverage and
diversity of replay samples, measured in the feature space of a separate judge classifier.

The judge is an MLP trained once on the stream's whole training set (never the solver being trained) and cached
as a file; its last hidden layer is the feature space. Our machines cannot fetch Inception weights, so the
distances are computed in this space, not in the usual Inception space: values compare runs on the same stream,
not with published FIDs. The formulas are short and run on torch and numpy; torchmetrics' FID would need the same custom extractor and one more dependency, and its
precision/recall/density/coverage is not in it.

* Fréchet distance (Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash
  equilibrium", 2017): ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` between Gaussians fitted to real
  and replayed features.
* Precision, recall, density, coverage (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", 2020), with ``k`` nearest neighbours: each real sample's ball reaches its k-th nearest real neighbour.
  Precision: share of replayed samples inside some real ball; recall: share of real samples inside some ball of
  the replay's own k-NN radii; density: mean number of real balls holding a replayed sample, over k; coverage:
  share of real balls holding at least one replayed sample.
* Class coverage: the share of each class in the replay as the judge labels it, and its entropy divided by
  ``log(number of classes)`` (1: uniform over the classes so far).
* Diversity ratio per class: the pixel-wise standard deviation across the class's replay samples, averaged over
  pixels, divided by the same for the class's real test images (near 0: one prototype image per class).
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from replay.errors import UserInputError
from replay.files import atomic_file
from replay.nets import mlp


class Judge(nn.Module):
    """An MLP classifier whose last hidden layer is the feature space of the replay measures.

    Args:
        input_shape: shape of one input (image), without the batch dimension.
        n_classes: number of classes of the stream.
        hidden: widths of the hidden layers.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (400, 400)):
        super().__init__()
        self.input_shape, self.n_classes = tuple(input_shape), n_classes
        self.body = nn.Sequential(nn.Flatten(), mlp([math.prod(input_shape), *hidden]))
        self.head = nn.Linear(hidden[-1], n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def describe(self, x: Tensor, batch_size: int = 2000) -> tuple[Tensor, Tensor]:
        """(features, predicted class) of inputs, in eval mode."""
        self.eval()
        features = torch.cat([self.features(chunk) for chunk in x.split(batch_size)])
        return features, self.head(features).argmax(1)

    def fit(self, x: Tensor, y: Tensor, epochs: int = 3, batch_size: int = 128, lr: float = 1e-3, seed: int = 0) -> float:
        """Train on (x, y) with Adam; returns the training accuracy of the last epoch."""
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self.train()
        correct = 0
        for _ in range(epochs):
            correct = 0
            for index in torch.randperm(len(y), generator=generator).split(batch_size):
                scores = self(x[index])
                loss = F.cross_entropy(scores, y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                correct += int((scores.argmax(1) == y[index]).sum())
        self.eval()
        return correct / len(y)


def judge_for(x: Tensor, y: Tensor, n_classes: int, cache_dir: Optional[Path | str], epochs: int = 3) -> Judge:
    """The judge of a training set: loaded from ``cache_dir`` when a judge of exactly this data was trained before
    (the file name holds a hash of the data and labels), else trained and saved there (None: not cached).

    Args:
        x: the stream's training images.
        y: their labels.
        n_classes: output units.
        cache_dir: where trained judges are kept (None: not cached).
        epochs: training epochs of a new judge.
    """
    judge = Judge(tuple(x.shape[1:]), n_classes)
    sample = x.detach().flatten()[:: max(1, x.numel() // 2**22)]  # at most ~4M values of the data are hashed
    digest = hashlib.sha1(sample.cpu().numpy().tobytes()).hexdigest()[:10]
    digest += hashlib.sha1(y.detach().cpu().numpy().tobytes()).hexdigest()[:10]
    path = Path(cache_dir) / f"judge-{digest}-e{epochs}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        judge.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return judge.eval()
    judge.fit(x.cpu(), y.cpu(), epochs)
    if path is not None:
        with atomic_file(path) as handle:
            torch.save(judge.state_dict(), handle)
    return judge.eval()


# -- the measures -------------------------------------------------------------------------------------------------
def frechet_distance(real: Tensor, generated: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features (rows), in float64.

    ``Tr((S_r S_g)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of the symmetric
    ``S_r^(1/2) S_g S_r^(1/2)`` (the same spectrum as ``S_r S_g``), with ``S_r^(1/2)`` from a symmetric
    eigendecomposition and eigenvalues rounding below zero clipped to zero: exact for the singular covariances of a
    replay that collapsed to a few images, where a general matrix square root warns and loses accuracy.

    Args:
        real: features of real samples [n, d].
        generated: features of generated samples [m, d].
    """
    a, b = real.double().cpu().numpy(), generated.double().cpu().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0.0))) @ vectors.T
    product = root_a @ cov_b @ root_a
    trace_root = np.sqrt(np.linalg.eigvalsh((product + product.T) / 2).clip(min=0.0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance of each row to its k-th nearest other row."""
    distances = torch.cdist(x, x)
    return distances.kthvalue(k + 1, dim=1).values  # the 1st is the row itself (distance 0)


def prdc(real: Tensor, generated: Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage of Naeem et al. (2020) with ``k`` nearest neighbours.

    Args:
        real: features of real samples.
        generated: features of generated samples.
        k: the nearest neighbour defining each real sample's ball.
    """
    if min(len(real), len(generated)) <= k:
        raise UserInputError(f"precision/recall need more than k = {k} real and generated samples")
    real, generated = real.float(), generated.float()
    real_radii, generated_radii = knn_radii(real, k), knn_radii(generated, k)
    distances = torch.cdist(real, generated)  # [real, generated]
    inside_real = distances < real_radii[:, None]
    return {"precision": float(inside_real.any(0).float().mean()),
            "recall": float((distances < generated_radii[None, :]).any(1).float().mean()),
            "density": float(inside_real.sum(0).float().mean() / k),
            "coverage": float(inside_real.any(1).float().mean())}


def class_shares(labels: Tensor, classes: Sequence[int]) -> tuple[list[float], float]:
    """Share of each of ``classes`` among ``labels`` and the entropy of the shares over log(len(classes))."""
    counts = torch.stack([(labels == c).sum() for c in classes]).double()
    shares = counts / max(float(counts.sum()), 1.0)
    positive = shares[shares > 0]
    entropy = max(0.0, float(-(positive * positive.log()).sum()))
    return shares.tolist(), entropy / math.log(len(classes)) if len(classes) > 1 else 1.0


def diversity_ratio(generated: Tensor, real: Tensor) -> float:
    """Mean pixel-wise std across generated samples over the same for real samples (NaN with < 2 samples)."""
    if len(generated) < 2 or len(real) < 2:
        return float("nan")
    return float(generated.flatten(1).std(0).mean() / real.flatten(1).std(0).mean().clamp_min(1e-12))


def replay_quality(judge: Judge, replay: Tensor, real: Tensor, real_labels: Tensor, classes: Sequence[int],
                   intended: Optional[Tensor] = None, k: int = 5) -> dict[str, object]:
    """Every measure of this module for one set of replay samples.

    Args:
        judge: the stream's judge classifier.
        replay: replayed inputs (the data's space, as the replay plugin hands them to the solver).
        real: real test inputs of ``classes``; ``real_labels`` their classes.
        classes: the classes the replay should cover (those seen so far).
        intended: for conditional replay, the class each sample was drawn for (the judge's agreement is then
            reported); None for unconditional replay, grouped by the judge's label.
        k: neighbours of precision / recall / density / coverage.
    """
    device = next(judge.parameters()).device
    fake_features, fake_labels = judge.describe(replay.to(device))
    real_features, _ = judge.describe(real.to(device))
    shares, entropy = class_shares(fake_labels, classes)
    groups = intended.to(fake_labels.device) if intended is not None else fake_labels
    ratios = {int(c): diversity_ratio(replay[(groups == c).cpu()], real[(real_labels == c).cpu()]) for c in classes}
    measured = [ratio for ratio in ratios.values() if not math.isnan(ratio)]  # classes with 2 samples or more
    result = {"samples": len(replay), "class_shares": dict(zip(map(int, classes), shares)),
              "class_entropy": entropy, "frechet_distance": frechet_distance(real_features, fake_features),
              **prdc(real_features, fake_features, k), "diversity_ratio_per_class": ratios,
              "diversity_ratio": float(np.mean(measured)) if measured else float("nan"),
              "min_diversity_ratio": float(min(measured)) if measured else float("nan")}
    if intended is not None:
        result["judge_agreement"] = float((fake_labels == intended.to(fake_labels.device)).float().mean())
    return result
