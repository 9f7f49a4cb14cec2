"""The data's normalisation, so that a generator models pixels in [0, 1] whatever the pipeline feeds it.

Avalanche's stock benchmarks normalise their images (``SplitMNIST``: ``Normalize((0.1307,), (0.3081,))``), so
the inputs a plugin sees are ``x = (u - mean) / std`` with ``u`` the pixels in [0, 1]. A Bernoulli likelihood
is defined only for targets in [0, 1]: given ``x`` itself, ``-log p(x|z)`` is unbounded below and the
generator diverges. A model that knows the normalisation scores ``u = x * std + mean`` and returns its
samples as ``(u - mean) / std``, in the space the solver is trained on.

``find_normalization`` reads the normalisation an Avalanche dataset applies from its transform groups (the
torchvision ``Normalize`` transforms anywhere in its tree of datasets); ``ModelsData`` is what the VAEs and
``BIRModel`` share: the map between the two spaces and the check that the data lies in the likelihood's support.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import Tensor, nn

from replay.errors import UserInputError

#: how far outside the likelihood's support a value may lie (float rounding of a normalise/un-normalise trip)
SUPPORT_TOLERANCE = 1e-3
#: the attributes through which Avalanche datasets and torchvision transforms hold their parts
_TREE_ATTRIBUTES = ("_datasets", "_transform_groups", "_frozen_transform_groups", "transform_groups", "transforms",
                    "transform", "dataset")


class Normalization(nn.Module):
    """``x = (u - mean) / std`` per channel (or one value for all units), ``u`` the pixels in [0, 1].

    Args:
        mean: per-channel means, or one value (the ``mean`` of torchvision's ``Normalize``).
        std: per-channel standard deviations, or one value; all positive.
    Buffers are not saved in ``state_dict``: the normalisation belongs to the data, not to the trained model.
    """

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() != std_t.numel() or mean_t.numel() == 0:
            raise UserInputError(f"Normalization needs as many means as stds, got {mean_t.tolist()} and {std_t.tolist()}")
        if not bool((std_t > 0).all()):
            raise UserInputError(f"Normalization needs positive stds, got {std_t.tolist()}")
        self.register_buffer("mean", mean_t, persistent=False)
        self.register_buffer("std", std_t, persistent=False)

    def check_shape(self, input_shape: Sequence[int]) -> None:
        """Raise unless the values fit inputs of ``input_shape`` (one value, or one per channel of dim 0)."""
        n = self.mean.numel()
        if n != 1 and (len(input_shape) < 2 or input_shape[0] != n):
            raise UserInputError(f"Normalization has {n} channels but the inputs have shape {tuple(input_shape)}")

    def _broadcast(self, value: Tensor, x: Tensor) -> Tensor:
        return value if value.numel() == 1 else value.view(-1, *[1] * (x.dim() - 2))

    def to_unit(self, x: Tensor) -> Tensor:
        """Normalised data -> pixels in [0, 1]."""
        return x * self._broadcast(self.std, x) + self._broadcast(self.mean, x)

    def from_unit(self, u: Tensor) -> Tensor:
        """Pixels in [0, 1] -> normalised data."""
        return (u - self._broadcast(self.mean, u)) / self._broadcast(self.std, u)

    def same_as(self, other: "Normalization") -> bool:
        return torch.equal(self.mean.cpu(), other.mean.cpu()) and torch.equal(self.std.cpu(), other.std.cpu())

    def extra_repr(self) -> str:
        return f"mean={self.mean.tolist()}, std={self.std.tolist()}"


def _parts(node: Any) -> Iterator[Any]:
    for name in _TREE_ATTRIBUTES:
        value = getattr(node, name, None)
        if value is None or inspect.ismethod(value):
            continue  # absent, or a method (Avalanche datasets have a ``transform`` method)
        if isinstance(value, dict):
            yield from value.values()
        elif isinstance(value, (list, tuple)):
            yield from value
        else:
            yield value


def find_normalization(dataset: Any, max_nodes: int = 10_000) -> Optional[Normalization]:
    """The normalisation an (Avalanche or torchvision) dataset applies to its images, or None if it applies none.

    Walks the dataset's tree of sub-datasets and transform groups (train and eval) and collects torchvision's
    ``Normalize`` transforms (v1 and v2). Raises ``UserInputError`` when it finds several different ones: then
    the normalisation must be declared.

    Args:
        dataset: an Avalanche ``AvalancheDataset`` (e.g. ``experience.dataset``) or a torchvision dataset.
        max_nodes: bound on the objects visited.
    """
    from torchvision import transforms as v1
    from torchvision.transforms import v2

    found: list[Normalization] = []
    stack, seen = [dataset], set()
    while stack and len(seen) < max_nodes:
        node = stack.pop()
        if id(node) in seen or isinstance(node, (str, bytes, Tensor)):
            continue
        seen.add(id(node))
        if isinstance(node, (v1.Normalize, v2.Normalize)):
            candidate = Normalization(node.mean, node.std)
            if not any(candidate.same_as(other) for other in found):
                found.append(candidate)
            continue
        stack.extend(_parts(node))
    if len(found) > 1:
        listed = "; ".join(candidate.extra_repr() for candidate in found)
        raise UserInputError(f"the dataset's transforms normalise in {len(found)} different ways ({listed}): "
                             "declare the one the generator should undo with normalization=Normalization(mean, std)")
    return found[0] if found else None


class ModelsData:
    """What the VAEs and ``BIRModel`` share about the data they model (mixed into ``nn.Module`` subclasses).

    A model has a ``likelihood`` (whose ``support`` is ``(low, high)`` or None) and an optional
    ``normalization``; the likelihood is scored on ``data_to_unit(x)`` and samples come back through
    ``unit_to_data``. Without a normalisation both are the identity and cost nothing.
    """

    likelihood: type
    normalization: Optional[Normalization]
    #: shape of one modelled input, without the batch dimension
    data_shape: tuple[int, ...]

    @property
    def bounded(self) -> bool:
        """Whether the likelihood is defined only on an interval (then the data's range is checked)."""
        return getattr(self.likelihood, "support", None) is not None

    def data_to_unit(self, x: Tensor) -> Tensor:
        return x if self.normalization is None else self.normalization.to_unit(x)

    def unit_to_data(self, u: Tensor) -> Tensor:
        return u if self.normalization is None else self.normalization.from_unit(u)

    def use_normalization(self, normalization: Optional[Normalization]) -> None:
        """Set the normalisation of the data (None: the data is already in the likelihood's space)."""
        if normalization is not None:
            normalization.check_shape(self.data_shape)
            normalization = normalization.to(next(self.parameters()).device)
        self.normalization = normalization

    def check_data(self, x: Tensor, where: str) -> None:
        """Raise ``UserInputError`` (one line) if ``x``, un-normalised, leaves the likelihood's support.

        One host synchronisation; the plugins call it on the first batch of each experience, before any update.
        """
        if not self.bounded:
            return
        low, high = self.likelihood.support
        lo, hi = (float(v) for v in torch.aminmax(self.data_to_unit(x.detach()).float()))
        if lo >= low - SUPPORT_TOLERANCE and hi <= high + SUPPORT_TOLERANCE:
            return
        undone = f" after undoing its normalisation ({self.normalization.extra_repr()})" if self.normalization else ""
        raise UserInputError(
            f"{where}: the {self.likelihood.name} likelihood models data in [{low:g}, {high:g}], but the batch spans "
            f"[{lo:.3g}, {hi:.3g}]{undone}; pass the mean and std your transforms normalise with, as "
            "normalization=replay.generators.Normalization(mean, std), to the generator (mlp_vae, conv_vae, VAE or BIRModel)")
