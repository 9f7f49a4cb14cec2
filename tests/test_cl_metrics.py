"""Continual-learning measures on hand-made accuracy matrices, worked out by hand."""
from __future__ import annotations

import pytest

from replay.cl_metrics import (average_accuracy_curve, average_forgetting, backward_transfer, forgetting_per_experience,
                               forward_transfer, intransigence, summary)
from replay.errors import UserInputError

# after exp 0: 0.9 on exp 0; after exp 1: 0.7 / 0.8; after exp 2: 0.6 / 0.5 / 0.9
R = [[0.9, 0.0, 0.0],
     [0.7, 0.8, 0.0],
     [0.6, 0.5, 0.9]]


def test_average_accuracy_after_each_experience():
    assert average_accuracy_curve(R) == pytest.approx([0.9, 0.75, 2.0 / 3.0])


def test_backward_transfer():
    # ((0.6 - 0.9) + (0.5 - 0.8)) / 2
    assert backward_transfer(R) == pytest.approx(-0.3)
    assert backward_transfer([[0.5]]) == 0.0


def test_forgetting_uses_the_best_earlier_accuracy():
    # exp 0: max(0.9, 0.7) - 0.6 = 0.3; exp 1: max(0.8) - 0.5 = 0.3
    assert forgetting_per_experience(R) == pytest.approx([0.3, 0.3])
    rising = [[0.5, 0.0, 0.0], [0.8, 0.6, 0.0], [0.7, 0.7, 0.9]]  # exp 0 peaks after exp 1, exp 1 improves
    assert forgetting_per_experience(rising) == pytest.approx([0.1, -0.1])
    assert average_forgetting(rising) == pytest.approx(0.0)
    assert backward_transfer(rising) == pytest.approx(((0.7 - 0.5) + (0.7 - 0.6)) / 2)  # BWT sees no forgetting here


def test_intransigence_and_forward_transfer():
    joint = [[0.95, 0.0, 0.0], [0.9, 0.9, 0.0], [0.9, 0.9, 0.95]]
    assert intransigence(R, joint) == pytest.approx(((0.95 - 0.9) + (0.9 - 0.8) + (0.95 - 0.9)) / 3)
    # class-incremental: R[k-1][k] = 0, so FWT = -mean(b_1..b_{T-1})
    assert forward_transfer(R, [0.1, 0.12, 0.08]) == pytest.approx(-(0.12 + 0.08) / 2)
    transfer = [[0.9, 0.3], [0.8, 0.9]]
    assert forward_transfer(transfer, [0.1, 0.1]) == pytest.approx(0.2)


def test_bad_matrices_are_refused():
    with pytest.raises(UserInputError, match="square"):
        backward_transfer([[0.1, 0.2]])
    with pytest.raises(UserInputError, match="reference run has 2 experiences"):
        intransigence(R, [[0.9, 0.0], [0.8, 0.9]])


def test_summary_holds_every_matrix_measure():
    assert set(summary(R)) == {"average_accuracy_per_experience", "backward_transfer", "forgetting_per_experience",
                               "average_forgetting"}
