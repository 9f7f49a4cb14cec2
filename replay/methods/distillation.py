"""Knowledge distillation, the soft targets of replayed samples."""
from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F


def distillation_loss(scores: Tensor, target_probs: Tensor, temperature: float = 2.0) -> Tensor:
    """Soft-target cross-entropy at temperature T, times T^2 (Hinton, Vinyals & Dean 2015, "Distilling the
    Knowledge in a Neural Network").

    Equal in gradient to T^2 KL(targets || softmax(scores / T)); this is the BI-R reference code's form. Computed in
    float32 (bfloat16 scores under mixed precision are upcast).

    Args:
        scores: the student's scores [batch, classes].
        target_probs: softmax(teacher scores / T) over the same columns, zero for classes the teacher did not know.
        temperature: T (> 0).
    """
    log_probs = F.log_softmax(scores.float() / temperature, dim=1)
    return -(target_probs * log_probs).sum(1).mean() * temperature**2
