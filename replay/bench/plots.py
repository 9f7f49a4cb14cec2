"""``replay-bench plot``: per-task accuracy figures (matplotlib, PNG or SVG by the file's suffix).

One result (or several seeds of one method): accuracy on each task as training proceeds (one line per
task, mean over seeds with a min-max band) and the accuracy matrix as a heatmap. Several methods: grouped
bars of the final per-task accuracy by method (mean ± std over seeds) and the average-accuracy curve over
experiences (mean with a ± std band). ``ymin`` sets the lower limit of every accuracy axis (not of the heatmap's
colour scale), to separate methods that all stay high, as on permuted MNIST.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from replay import cl_metrics  # noqa: E402
from replay.bench.compare import group_results  # noqa: E402
from replay.errors import UserInputError  # noqa: E402
from replay.files import atomic_file  # noqa: E402


def label_of(key: tuple) -> str:
    method, prior, _, _ = key
    return method if prior == "-" else f"{method} / {prior}"


def plot_single(ax_lines: Axes, ax_heat: Axes, members: list[dict], title: str, ymin: float = 0.0) -> None:
    matrices = np.array([r["accuracy_matrix"] for r in members])
    mean = matrices.mean(0)
    n = mean.shape[0]
    steps = np.arange(1, n + 1)
    for j in range(n):
        ax_lines.plot(steps[j:], mean[j:, j], marker="o", label=f"task {j + 1}")
        if len(members) > 1:
            ax_lines.fill_between(steps[j:], matrices[:, j:, j].min(0), matrices[:, j:, j].max(0), alpha=0.15)
    ax_lines.set(xlabel="after training on experience", ylabel="test accuracy", ylim=(ymin, 1.02),
                 title=f"{title}: per-task accuracy", xticks=steps)
    ax_lines.legend(fontsize="small", ncol=2)
    image = ax_heat.imshow(mean, vmin=0, vmax=1, cmap="viridis")
    for i in range(n):
        for j in range(n):
            ax_heat.text(j, i, f"{mean[i, j]:.2f}", ha="center", va="center", fontsize=7,
                         color="white" if mean[i, j] < 0.5 else "black")
    ax_heat.set(xlabel="evaluated on experience", ylabel="after training experience",
                title=f"accuracy matrix R[i][j] ({len(members)} seed{'s' if len(members) > 1 else ''})",
                xticks=range(n), yticks=range(n), xticklabels=steps, yticklabels=steps)
    plt.colorbar(image, ax=ax_heat, fraction=0.046)


def plot_comparison(ax_bars: Axes, ax_curve: Axes, groups: dict, ymin: float = 0.0) -> None:
    keys = sorted(groups)
    n_tasks = max(len(r["accuracy_matrix"][-1]) for members in groups.values() for r in members)
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        matrices = np.array([r["accuracy_matrix"] for r in groups[key]])
        last = matrices[:, -1, :]
        x = np.arange(n_tasks) + (k - (len(keys) - 1) / 2) * width
        ax_bars.bar(x, last.mean(0), width, yerr=last.std(0) if len(last) > 1 else None, capsize=2,
                    label=label_of(key))
        curves = np.array([cl_metrics.average_accuracy_curve(m) for m in matrices])
        steps = np.arange(1, curves.shape[1] + 1)
        bwt = np.mean([cl_metrics.backward_transfer(m) for m in matrices])
        forgetting = np.mean([cl_metrics.average_forgetting(m) for m in matrices])
        ax_curve.plot(steps, curves.mean(0), marker="o",
                      label=f"{label_of(key)}: BWT {bwt:+.3f}, forgetting {forgetting:.3f}")
        if len(curves) > 1:
            ax_curve.fill_between(steps, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), alpha=0.15)
    ax_bars.set(xlabel="task", ylabel="final accuracy", ylim=(ymin, 1.02), xticks=range(n_tasks),
                xticklabels=[str(j + 1) for j in range(n_tasks)], title="final accuracy per task (mean ± std)")
    ax_bars.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)  # below: bars fill the axes
    ax_curve.set(xlabel="experiences trained", ylabel="average accuracy on tasks so far", ylim=(ymin, 1.02),
                 title="average accuracy (mean ± std over seeds)", xticks=range(1, n_tasks + 1))
    ax_curve.legend(fontsize="small")


def make_figure(results: list[dict], ymin: float = 0.0) -> Figure:
    """One row per configuration (seeds grouped), plus a comparison row when there are several."""
    if not 0.0 <= ymin < 1.0:
        raise UserInputError(f"--ymin must be in [0, 1), got {ymin}")
    groups = group_results(results)
    rows = len(groups) + (1 if len(groups) > 1 else 0)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.5 * rows), squeeze=False)
    for row, key in enumerate(sorted(groups)):
        plot_single(axes[row, 0], axes[row, 1], groups[key], label_of(key), ymin)
    if len(groups) > 1:
        plot_comparison(axes[-1, 0], axes[-1, 1], groups, ymin)
    fig.tight_layout()
    return fig


def check_figure_path(out: Path) -> None:
    """Raise, before any drawing, when the figure's format cannot be told from its suffix."""
    if out.suffix.lower() not in (".png", ".svg"):
        raise UserInputError(f"figure path {out} must end in .png or .svg")


def save_figure(fig: Figure, out: Path) -> Path:
    """Write ``fig`` to ``out`` whole or not at all (``replay.files.atomic_file``), in the format of its suffix."""
    try:
        with atomic_file(out) as handle:
            fig.savefig(handle, dpi=120, format=out.suffix.lstrip(".").lower())
    finally:
        plt.close(fig)
    return out


def plot_results(results: list[dict], out: Path, ymin: float = 0.0) -> list[Path]:
    check_figure_path(out)
    return [save_figure(make_figure(results, ymin), out)]
