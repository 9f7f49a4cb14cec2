"""``replay-bench plot`` (and ``compare --plot``, a sweep's end): per-task accuracy figures for a paper.

Results are grouped by configuration (the seeds of one configuration form one group, as in ``replay-bench
compare``). ``plot_results(results, out)`` writes three figures:

* ``out``: average accuracy over the tasks trained so far, after each experience, every configuration in one panel
  (mean over seeds, band: 95% t-interval over seeds); and the final accuracy on each task (mean, 95% t-interval);
* ``<stem>-tasks<suffix>``: for each configuration, the accuracy on each task as training proceeds (mean over seeds);
* ``<stem>-matrix<suffix>``: for each configuration, the accuracy matrix ``R[i][j]`` (after training experience
  ``i``, on task ``j``; mean over seeds), with the cells of tasks not yet trained left blank.

Every configuration keeps one colour (Okabe & Ito's colour-blind-safe palette) in every figure. Labels are short by
default: the method and prior, then only the config keys whose values differ between the shown configurations of
that method and prior (and the stream, where streams differ); ``labels`` replaces them. Long labels wrap; legends sit
outside the axes. Widths fit a paper's two columns (7 in) or one (3.5 in). The format follows the suffix: PNG
(300 dpi), PDF (TrueType fonts embedded) or SVG (glyphs as paths).
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from replay import cl_metrics  # noqa: E402
from replay.bench.compare import REPLAY_MEASURES, final_replay_quality, group_results  # noqa: E402
from replay.bench.config import saved_config  # noqa: E402
from replay.bench.sweep import science  # noqa: E402
from replay.errors import UserInputError  # noqa: E402
from replay.files import atomic_file  # noqa: E402

#: figure widths in inches
WIDTHS = {"two-column": 7.0, "one-column": 3.5}
FORMATS = (".png", ".pdf", ".svg")
#: Okabe & Ito (2008), "Color universal design", without yellow (too light on white)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: markers of the configurations after the first len(PALETTE): colour and marker together stay unique
MARKERS = ("o", "s", "^", "D", "v")
DISPLAY = {"gr": "GR", "bir": "BI-R", "generative_classifier": "Generative classifier", "naive": "Naive", "joint": "Joint"}
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "path",
         "axes.spines.top": False, "axes.spines.right": False}
#: characters of 7-pt text per inch of width, with a margin
CHARS_PER_INCH = 15
#: the smallest matrix cell (inches) that shows its value
MIN_CELL_INCHES = 0.22


def _flat(node: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return flat


def display_name(result: dict) -> str:
    """The method's name in a figure: ``GR``, ``BI-R``, ``BI-R + SI`` (a positive ``method.si_c``), or as registered."""
    name = DISPLAY.get(result["method"], result["method"])
    return name + " + SI" if (saved_config(result)["method"].get("si_c") or 0) > 0 else name


def short_labels(groups: dict[tuple, list[dict]]) -> list[str]:
    """One label per group: ``BI-R / gmm``, then the config keys that differ between the groups of the same method
    and prior (``optimizer.lr=0.0001``), and the stream where the groups' streams differ."""
    keys = list(groups)
    firsts = [groups[key][0] for key in keys]
    family = [(display_name(r), r["prior"]) for r in firsts]
    flats = [{k: v for k, v in _flat(science(saved_config(r))).items() if not k.endswith(".name")} for r in firsts]
    streams = {r["stream"] for r in firsts}
    labels = []
    for index, result in enumerate(firsts):
        peers = [flats[j] for j in range(len(keys)) if family[j] == family[index]]
        differing = sorted(k for k in set().union(*peers) if len({peer.get(k) for peer in peers}) > 1)
        name = family[index][0]
        if result["prior"]:
            name += f" / {result['prior']}"
        extras = [f"{k}={flats[index].get(k, '-')}" for k in differing]
        extras += [result["stream"]] if len(streams) > 1 else []
        labels.append(f"{name}, {', '.join(extras)}" if extras else name)
    return labels


def chosen_labels(groups: dict[tuple, list[dict]], labels: Optional[Sequence[str]]) -> list[str]:
    """The user's ``labels`` (one per group, checked) or the short labels."""
    defaults = short_labels(groups)
    if labels is not None and len(labels) != len(groups):
        raise UserInputError(f"--label given {len(labels)} times, but the results form {len(groups)} configurations "
                             f"(in order: {'; '.join(defaults)}): give one label per configuration")
    return list(labels) if labels is not None else defaults


def _marker(index: int) -> str:
    """The marker of the ``index``-th configuration (a new one each time the palette's colours come round)."""
    return MARKERS[(index // len(PALETTE)) % len(MARKERS)]


def _interval(values: np.ndarray) -> np.ndarray:
    """Half-width of the 95% t-interval of the mean over axis 0 (0 with one value)."""
    n = len(values)
    if n < 2:
        return np.zeros(values.shape[1:])
    return stats.t.ppf(0.975, n - 1) * values.std(0, ddof=1) / np.sqrt(n)


def _wrap(text: str, inches: float) -> str:
    return textwrap.fill(text, max(12, int(inches * CHARS_PER_INCH)), break_on_hyphens=False)


def _title(text: str, panel_inches: float) -> str:
    """A panel's title wrapped to its axes' width (about 0.8 of the panel; titles are 8 pt)."""
    return _wrap(text, 0.8 * panel_inches * 7 / 8)


def _legend_layout(labels: list[str], width: float) -> tuple[int, list[str]]:
    """(columns, wrapped labels) of a legend across a figure ``width`` inches wide: as many columns as the longest
    label allows."""
    longest = max(len(label) for label in labels)
    columns = max(1, min(len(labels), int(width * CHARS_PER_INCH) // (longest + 6)))
    return columns, [_wrap(label, width / columns - 0.5) for label in labels]


def _legend_below(fig: Figure, handles: list, labels: list[str], width: float) -> None:
    """A legend under the panels (constrained layout makes room)."""
    columns, wrapped = _legend_layout(labels, width)
    fig.legend(handles, wrapped, loc="outside lower center", ncols=columns, frameon=False)


def _legend_rows(labels: list[str], width: float) -> int:
    """Text lines the legend of ``_legend_below`` takes."""
    columns, wrapped = _legend_layout(labels, width)
    return -(-len(labels) // columns) * max(len(label.splitlines()) for label in wrapped)


def comparison_figure(groups: dict[tuple, list[dict]], labels: list[str], colours: list[str], width: float,
                      ymin: float) -> Figure:
    """Average accuracy over experiences (one panel, all groups) and final accuracy per task (95% intervals)."""
    legend_height = 0.16 * _legend_rows(labels, width) + 0.1
    panels = (1, 2) if width >= WIDTHS["two-column"] else (2, 1)
    height = (2.4 if panels == (1, 2) else 4.4) + legend_height
    fig, (curve_ax, bars_ax) = plt.subplots(*panels, figsize=(width, height), layout="constrained")
    n_tasks = max(len(r["accuracy_matrix"][-1]) for members in groups.values() for r in members)
    bar_width = 0.8 / len(groups)
    handles = []
    for index, members in enumerate(groups.values()):
        matrices = [np.asarray(r["accuracy_matrix"], dtype=float) for r in members]
        curves = np.array([cl_metrics.average_accuracy_curve(m) for m in matrices])
        steps = np.arange(1, curves.shape[1] + 1)
        mean, half = curves.mean(0), _interval(curves)
        (line,) = curve_ax.plot(steps, mean, marker=_marker(index), markersize=3, color=colours[index], linewidth=1.2)
        if len(curves) > 1:
            curve_ax.fill_between(steps, mean - half, mean + half, color=colours[index], alpha=0.2, linewidth=0)
        handles.append(line)
        finals = np.array([m[-1] for m in matrices])
        x = np.arange(1, finals.shape[1] + 1) + (index - (len(groups) - 1) / 2) * bar_width
        bars_ax.bar(x, finals.mean(0), bar_width, color=colours[index],
                    yerr=_interval(finals) if len(finals) > 1 else None, capsize=1.5, error_kw={"linewidth": 0.8})
    curve_ax.set(xlabel="experiences trained", ylabel="average accuracy", ylim=(ymin, 1.0),
                 xticks=range(1, n_tasks + 1), title="average accuracy on the tasks so far")
    bars_ax.set(xlabel="task", ylabel="final accuracy", ylim=(ymin, 1.0), xticks=range(1, n_tasks + 1),
                title="final accuracy per task")
    _legend_below(fig, handles, labels, width)
    return fig


def _panel_grid(count: int, width: float, extra_height: float) -> tuple[Figure, np.ndarray]:
    columns = min(count, 3 if width >= WIDTHS["two-column"] else 2)
    rows = -(-count // columns)
    panel = width / columns
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * (panel * 0.8 + 0.35) + extra_height),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes


def tasks_figure(groups: dict[tuple, list[dict]], labels: list[str], colours: list[str], width: float,
                 ymin: float) -> Figure:
    """One panel per group: accuracy on each task after each experience (mean over seeds), tasks in one legend."""
    n_tasks = max(len(r["accuracy_matrix"][-1]) for members in groups.values() for r in members)
    task_labels = [f"task {j + 1}" for j in range(n_tasks)]
    fig, axes = _panel_grid(len(groups), width, 0.16 * _legend_rows(task_labels, width) + 0.1)
    shades = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, n_tasks))
    handles: dict[int, object] = {}
    panel_width = width / axes.shape[1]
    for index, (ax, members) in enumerate(zip(axes.flat, groups.values())):
        mean = np.mean([r["accuracy_matrix"] for r in members], axis=0)
        steps = np.arange(1, len(mean) + 1)
        for j in range(len(mean)):
            (handles[j],) = ax.plot(steps[j:], mean[j:, j], marker="o", markersize=2.5, linewidth=1.0,
                                    color=shades[j])
        ax.set(ylim=(ymin, 1.0), xticks=steps, xlabel="experiences trained", ylabel="accuracy")
        ax.set_title(_title(labels[index], panel_width), color=colours[index])
    _legend_below(fig, [handles[j] for j in sorted(handles)], task_labels[: len(handles)], width)
    return fig


def matrix_figure(groups: dict[tuple, list[dict]], labels: list[str], colours: list[str], width: float) -> Figure:
    """One accuracy matrix per group (mean over seeds), the cells of tasks not yet trained blank; the values written
    in the cells where they fit."""
    fig, axes = _panel_grid(len(groups), width, 0.0)
    panel_width = width / axes.shape[1]
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    image, means = None, []
    for index, (ax, members) in enumerate(zip(axes.flat, groups.values())):
        mean = np.mean([r["accuracy_matrix"] for r in members], axis=0)
        n = len(mean)
        masked = np.ma.masked_array(mean, mask=np.triu(np.ones((n, n), dtype=bool), k=1))
        image = ax.imshow(masked, vmin=0, vmax=1, cmap=cmap)
        ticks = range(n) if n <= 10 else range(0, n, max(1, n // 5))
        ax.set(xticks=ticks, yticks=ticks, xticklabels=[t + 1 for t in ticks], yticklabels=[t + 1 for t in ticks],
               xlabel="task", ylabel="after experience")
        ax.spines[:].set_visible(False)
        ax.set_title(_title(labels[index], panel_width), color=colours[index])
        means.append((ax, mean))
    fig.colorbar(image, ax=axes, shrink=0.8, label="accuracy")
    fig.draw_without_rendering()  # the layout fixes each matrix's size: write the values where the cells hold them
    for ax, mean in means:
        n = len(mean)
        if ax.get_window_extent().width / fig.dpi / n >= MIN_CELL_INCHES:
            for i, j in zip(*np.tril_indices(n)):
                ax.text(j, i, f"{mean[i, j]:.2f}", ha="center", va="center", fontsize=5,
                        color="white" if mean[i, j] < 0.5 else "black")
    return fig


def versus_figure(results: list[dict], measure: str, labels: Optional[Sequence[str]] = None,
                  size: str = "two-column") -> Figure:
    """Final average accuracy of each run against a measure of its last recorded replay (``replay.quality``), one
    point per run, one colour per configuration: does accuracy follow, say, the replay's diversity?

    Args:
        results: result records that recorded their replay's quality.
        measure: one of ``REPLAY_MEASURES``.
        labels: one label per configuration, in order (None: ``short_labels``).
        size: ``two-column`` or ``one-column``.
    """
    if measure not in REPLAY_MEASURES:
        raise UserInputError(f"--versus must be one of {', '.join(REPLAY_MEASURES)}, got {measure!r}")
    measured = [r for r in results if final_replay_quality(r)]
    if not measured:
        raise UserInputError(f"none of these runs measured its replay ({measure}): run them with replay_quality: true")
    groups = group_results(measured)
    labels = chosen_labels(groups, labels)
    width = WIDTHS[size]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(width, width * 0.55 + 0.16 * _legend_rows(labels, width) + 0.1),
                               layout="constrained")
        handles = []
        for index, members in enumerate(groups.values()):
            x = [final_replay_quality(r)[measure] for r in members]
            y = [r["final_average_accuracy"] for r in members]
            handles.append(ax.scatter(x, y, s=18, color=PALETTE[index % len(PALETTE)], marker=_marker(index), zorder=3))
        ax.set(xlabel=f"replay {measure.replace('_', ' ')} after the last experience", ylabel="final average accuracy")
        ax.grid(alpha=0.3)
        _legend_below(fig, handles, labels, width)
    return fig


def check_figure_path(out: Path) -> None:
    """Raise, before any drawing, when the figure's format cannot be told from its suffix."""
    if out.suffix.lower() not in FORMATS:
        raise UserInputError(f"figure path {out} must end in {', '.join(FORMATS[:-1])} or {FORMATS[-1]}")


def save_figure(fig: Figure, out: Path) -> Path:
    """Write ``fig`` to ``out`` whole or not at all (``replay.files.atomic_file``), in the format of its suffix."""
    try:
        with atomic_file(out) as handle:
            fig.savefig(handle, dpi=300, format=out.suffix.lstrip(".").lower())
    finally:
        plt.close(fig)
    return out


def make_figures(results: list[dict], ymin: float = 0.0, labels: Optional[Sequence[str]] = None,
                 size: str = "two-column") -> dict[str, Figure]:
    """The three figures (``comparison``, ``tasks``, ``matrix``) of ``results``, grouped by configuration in the
    order the groups first appear.

    Args:
        results: result records (``replay.bench.results.read_result``).
        ymin: lower limit of every accuracy axis, in [0, 1) (not of the matrices' colour scale).
        labels: one label per group, in order; None: the short labels of ``short_labels``.
        size: ``two-column`` (7 in wide) or ``one-column`` (3.5 in).
    """
    if not 0.0 <= ymin < 1.0:
        raise UserInputError(f"--ymin must be in [0, 1), got {ymin}")
    if size not in WIDTHS:
        raise UserInputError(f"--size must be one of {', '.join(WIDTHS)}, got {size!r}")
    groups = group_results(results)
    labels = chosen_labels(groups, labels)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(groups))]
    width = WIDTHS[size]
    with plt.rc_context(STYLE):
        return {"comparison": comparison_figure(groups, labels, colours, width, ymin),
                "tasks": tasks_figure(groups, labels, colours, width, ymin),
                "matrix": matrix_figure(groups, labels, colours, width)}


def figure_paths(out: Path) -> dict[str, Path]:
    """Where ``plot_results`` writes each figure: ``out`` and two siblings named after it."""
    return {"comparison": out, "tasks": out.with_name(f"{out.stem}-tasks{out.suffix}"),
            "matrix": out.with_name(f"{out.stem}-matrix{out.suffix}")}


def plot_results(results: list[dict], out: Path, ymin: float = 0.0, labels: Optional[Sequence[str]] = None,
                 size: str = "two-column") -> list[Path]:
    """Write the figures of ``make_figures`` to ``figure_paths(out)``; returns their paths."""
    check_figure_path(out)
    figures = make_figures(results, ymin, labels, size)
    paths = figure_paths(out)
    with plt.rc_context(STYLE):
        return [save_figure(figures[name], paths[name]) for name in figures]
