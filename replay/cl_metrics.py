"""Continual-learning measures computed from an accuracy matrix.

``R[i][j]`` is the accuracy on experience ``j``'s test data after training on experiences ``0..i`` (``T`` rows and
columns). The definitions, with ``T`` experiences:

* average accuracy after experience ``i``: ``A_i = (1 / (i + 1)) sum_{j <= i} R[i][j]``; the final average
  accuracy is ``A_{T-1}``;
* backward transfer (Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", 2017):
  ``BWT = (1 / (T - 1)) sum_{j < T-1} (R[T-1][j] - R[j][j])``, negative when learning later experiences costs
  accuracy on earlier ones;
* average forgetting (Chaudhry et al., "Riemannian Walk for Incremental Learning", 2018): for each experience
  ``j < T-1``, the best accuracy it had before the end minus its final one,
  ``f_j = max_{j <= l < T-1} R[l][j] - R[T-1][j]``, averaged over ``j``;
* intransigence (Chaudhry et al. 2018), against a reference run (joint training, same seed and class order):
  ``I = (1 / T) sum_k (R_ref[k][k] - R[k][k])``, how much less a method learns of each new experience than the
  reference does;
* forward transfer (Lopez-Paz & Ranzato 2017): ``FWT = (1 / (T - 1)) sum_{k >= 1} (R[k-1][k] - b_k)``, with ``b_k``
  the accuracy of the untrained (randomly initialised) model on experience ``k``. In the class-incremental
  protocol the output units of unseen classes are masked, so ``R[k-1][k] = 0`` and ``FWT = -mean(b)``: a method
  cannot transfer forward to classes it cannot predict yet.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from replay.errors import UserInputError

Matrix = Sequence[Sequence[float]]


def _square(matrix: Matrix) -> np.ndarray:
    array = np.asarray(matrix, dtype=float)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 1:
        raise UserInputError(f"an accuracy matrix must be square (T x T), got shape {array.shape}")
    return array


def average_accuracy_curve(matrix: Matrix) -> list[float]:
    """``A_i`` for every experience ``i``: the mean accuracy over the experiences seen so far.

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    array = _square(matrix)
    return [float(array[i, : i + 1].mean()) for i in range(len(array))]


def backward_transfer(matrix: Matrix) -> float:
    """BWT of Lopez-Paz & Ranzato (2017); 0 for a single experience.

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    array = _square(matrix)
    if len(array) < 2:
        return 0.0
    return float(np.mean(array[-1, :-1] - np.diag(array)[:-1]))


def forgetting_per_experience(matrix: Matrix) -> list[float]:
    """``f_j`` of Chaudhry et al. (2018) for ``j < T-1``: the best earlier accuracy minus the final one.

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    array = _square(matrix)
    return [float(array[j:-1, j].max() - array[-1, j]) for j in range(len(array) - 1)]


def average_forgetting(matrix: Matrix) -> float:
    """The mean of ``forgetting_per_experience``; 0 for a single experience.

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    forgetting = forgetting_per_experience(matrix)
    return float(np.mean(forgetting)) if forgetting else 0.0


def intransigence(matrix: Matrix, reference: Matrix) -> float:
    """Chaudhry et al. (2018) against ``reference`` (e.g. the joint run of the same seed).

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    array, ref = _square(matrix), _square(reference)
    if array.shape != ref.shape:
        raise UserInputError(f"the reference run has {len(ref)} experiences, this run {len(array)}")
    return float(np.mean(np.diag(ref) - np.diag(array)))


def forward_transfer(matrix: Matrix, initial: Sequence[float]) -> float:
    """FWT of Lopez-Paz & Ranzato (2017); ``initial[k]``: the untrained model's accuracy on experience ``k``.

    Args:
        matrix: the accuracy matrix, ``matrix[i][j]`` the accuracy on experience j after training on experience i.
    """
    array, b = _square(matrix), np.asarray(initial, dtype=float)
    if b.shape != (len(array),):
        raise UserInputError(f"need one initial accuracy per experience ({len(array)}), got {b.shape}")
    if len(array) < 2:
        return 0.0
    return float(np.mean(np.diag(array, k=1) - b[1:]))


def summary(matrix: Matrix) -> dict[str, object]:
    """The measures that need nothing but the matrix, for ``result.json`` and the compare table."""
    return {"average_accuracy_per_experience": average_accuracy_curve(matrix),
            "backward_transfer": backward_transfer(matrix),
            "forgetting_per_experience": forgetting_per_experience(matrix),
            "average_forgetting": average_forgetting(matrix)}
