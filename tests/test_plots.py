"""replay-bench plot / compare --plot: figures a paper can use, whatever the labels' length (nothing outside the
figure, no legend over the data), with masked matrices, one colour per configuration, short default labels."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.text import Text

from replay.bench.cli import main
from replay.bench.plots import make_figures, short_labels
from replay.bench.compare import group_results
from replay.bench.results import read_result
from tests.test_cli import fake_result

LONG = "a configuration whose name is much longer than any legend entry should ever be, twice over, really"


def layout_problems(figure: matplotlib.figure.Figure) -> list[str]:
    """Texts (titles, labels, ticks, legend entries, annotations) reaching outside the figure, values written over
    each other, and legends that overlap an axes (where the data are drawn)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    bounds = figure.bbox
    problems = []
    undrawn = set()  # labels of ticks outside the axes' view, which matplotlib keeps but does not draw
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 <= tick.get_loc() <= high + 1e-9:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    for text in figure.findobj(Text):
        if (not text.get_visible() or not text.get_text().strip() or (text.axes and not text.axes.get_visible())
                or id(text) in undrawn):
            continue
        box = text.get_window_extent(renderer)
        if box.x0 < bounds.x0 - 1 or box.y0 < bounds.y0 - 1 or box.x1 > bounds.x1 + 1 or box.y1 > bounds.y1 + 1:
            problems.append(f"text outside the figure: {text.get_text()[:40]!r}")
    for ax in figure.axes:
        boxes = [text.get_window_extent(renderer) for text in ax.texts if text.get_visible()]
        if any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]):
            problems.append(f"values overlap each other in {ax.get_title()[:30]!r}")
    legends = list(figure.legends) + [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in figure.axes:
            if ax.get_visible() and box.overlaps(ax.get_window_extent(renderer)):
                problems.append(f"a legend overlaps the axes {ax.get_title()[:30]!r}")
    return problems


def results_of(tmp_path: Path, groups: int, seeds: int = 3, tasks: int = 5) -> list[dict]:
    methods = [("gr", "gaussian"), ("bir", "gmm"), ("gr", "binarized_gaussian"), ("bir", "cgm"), ("gr", "gmm")]
    files = [fake_result(tmp_path / f"{g}-{s}.json", methods[g][0], s, [0.4 + 0.1 * s + 0.02 * g] * tasks,
                         prior=methods[g][1]) for g in range(groups) for s in range(seeds)]
    return [read_result(f) for f in files]


@pytest.mark.parametrize("size", ["two-column", "one-column"])
@pytest.mark.parametrize("groups,long_labels,tasks", [(1, False, 5), (4, False, 10), (4, True, 5), (5, True, 3)])
def test_nothing_is_clipped_or_covered_whatever_the_labels(tmp_path, size, groups, long_labels, tasks):
    results = results_of(tmp_path, groups, tasks=tasks)
    labels = [f"{LONG} {g}" for g in range(groups)] if long_labels else None
    figures = make_figures(results, labels=labels, size=size)
    assert set(figures) == {"comparison", "tasks", "matrix"}
    for name, figure in figures.items():
        assert layout_problems(figure) == [], name
        assert figure.get_size_inches()[0] == {"two-column": 7.0, "one-column": 3.5}[size]
        matplotlib.pyplot.close(figure)


def test_the_check_finds_a_clipped_title_and_a_legend_over_the_data():
    figure, ax = matplotlib.pyplot.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label=LONG)
    ax.set_title(LONG)
    ax.legend(loc="center")
    problems = layout_problems(figure)
    assert any(p.startswith("text outside") for p in problems) and any(p.startswith("a legend overlaps") for p in problems)
    matplotlib.pyplot.close(figure)


def test_matrices_mask_untrained_tasks_and_each_configuration_keeps_its_colour(tmp_path):
    results = results_of(tmp_path, 3, seeds=2, tasks=4)
    figures = make_figures(results)
    matrix_axes = [ax for ax in figures["matrix"].axes if ax.images]
    assert len(matrix_axes) == 3
    for ax in matrix_axes:
        mask = np.ma.getmaskarray(ax.images[0].get_array())
        assert (mask == np.triu(np.ones((4, 4), dtype=bool), k=1)).all()
        cells = {(round(t.get_position()[1]), round(t.get_position()[0])) for t in ax.texts}
        assert cells == {(i, j) for i in range(4) for j in range(i + 1)}  # numbers only where a task was trained
    curve_colours = [matplotlib.colors.to_hex(line.get_color()) for line in figures["comparison"].axes[0].lines]
    task_titles = [matplotlib.colors.to_hex(ax.title.get_color()) for ax in figures["tasks"].axes if ax.get_visible()]
    matrix_titles = [matplotlib.colors.to_hex(ax.title.get_color()) for ax in matrix_axes]
    assert curve_colours == task_titles == matrix_titles and len(set(curve_colours)) == 3
    for figure in figures.values():
        matplotlib.pyplot.close(figure)


def test_default_labels_are_method_and_prior_then_only_the_keys_that_differ(tmp_path):
    paths = [fake_result(tmp_path / "a.json", "bir", 0, [0.9, 0.9]), fake_result(tmp_path / "b.json", "bir", 0, [0.9, 0.9]),
             fake_result(tmp_path / "c.json", "gr", 0, [0.9, 0.9], prior="gaussian"),
             fake_result(tmp_path / "d.json", "naive", 0, [0.5, 0.9], prior=None)]
    record = json.loads(paths[1].read_text())
    record["config"]["optimizer"] = {"lr": 0.0001}
    paths[1].write_text(json.dumps(record))
    labels = short_labels(group_results([read_result(p) for p in paths]))
    assert labels == ["BI-R / gmm, optimizer.lr=0.001", "BI-R / gmm, optimizer.lr=0.0001", "GR / gaussian", "Naive"]


def test_plot_writes_three_figures_in_each_format_with_embedded_fonts(tmp_path, capsys):
    files = [fake_result(tmp_path / f"{m}{s}.json", m, s, [0.5 + 0.1 * s, 0.8, 0.9]) for m in ("gr", "bir") for s in (0, 1)]
    for suffix in ("png", "pdf", "svg"):
        assert main(["plot", *map(str, files), "--out", str(tmp_path / f"fig.{suffix}"), "--label", "GR",
                     "--label", "BI-R", "--size", "one-column"]) == 0
        for stem in ("fig", "fig-tasks", "fig-matrix"):
            assert (tmp_path / f"{stem}.{suffix}").stat().st_size > 5_000
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf  # TrueType fonts embedded, no Type 3 bitmaps
    assert b"<text" not in (tmp_path / "fig.svg").read_bytes()  # glyphs as paths: no font needed to view it
    capsys.readouterr()
    assert main(["plot", *map(str, files), "--label", "only one", "--out", str(tmp_path / "bad.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        "replay-bench: --label given 1 times, but the results form 2 configurations (in order: GR / gmm; BI-R / gmm): "
        "give one label per configuration")
    assert main(["plot", *map(str, files), "--out", str(tmp_path / "bad.jpg")]) == 2
    assert "must end in .png, .pdf or .svg" in capsys.readouterr().err
    assert not list(tmp_path.glob("bad*"))


def test_compare_plot_writes_the_table_and_the_figures(tmp_path, capsys):
    files = [fake_result(tmp_path / f"{m}.json", m, 0, [0.6, 0.8, 0.9]) for m in ("gr", "bir")]
    assert main(["compare", *map(str, files), "--plot", str(tmp_path / "cmp.png")]) == 0
    out = capsys.readouterr().out
    assert "| gr | gmm |" in out and f"wrote {tmp_path / 'cmp-matrix.png'}" in out
    assert main(["compare", *map(str, files), "--plot", str(tmp_path / "cmp.gif")]) == 2
    assert "| gr |" not in capsys.readouterr().out  # refused before the table


def test_accuracy_against_a_replay_measure_one_point_per_run_and_the_csv_columns(tmp_path, capsys):
    import csv

    files = []
    for index, (method, prior) in enumerate((("bir", "cgm"), ("bir", "gmm"))):
        for seed in (0, 1):
            path = fake_result(tmp_path / f"{index}{seed}.json", method, seed, [0.5 + 0.2 * index, 0.9], prior=prior)
            record = json.loads(path.read_text())
            record["replay_quality_per_experience"] = [None, {"diversity_ratio": 0.1 + 0.5 * index + 0.01 * seed,
                                                              **{m: 0.5 for m in ("min_diversity_ratio", "recall",
                                                                                  "coverage", "precision", "density",
                                                                                  "frechet_distance", "class_entropy")}}]
            path.write_text(json.dumps(record))
            files.append(path)
    assert main(["plot", *map(str, files), "--versus", "diversity_ratio", "--out", str(tmp_path / "vs.pdf")]) == 0
    from replay.bench.plots import versus_figure

    figure = versus_figure([read_result(f) for f in files], "diversity_ratio", labels=[LONG, LONG + " 2"])
    assert layout_problems(figure) == []
    offsets = [collection.get_offsets().tolist() for collection in figure.axes[0].collections]
    expected = [[[0.1, 0.7], [0.11, 0.7]], [[0.6, 0.8], [0.61, 0.8]]]  # (diversity, final accuracy) of each run
    assert np.allclose(offsets, expected)
    matplotlib.pyplot.close(figure)
    capsys.readouterr()
    plain = fake_result(tmp_path / "plain.json", "gr", 0, [0.5, 0.9])
    assert main(["plot", str(plain), "--versus", "diversity_ratio", "--out", str(tmp_path / "no.png")]) == 2
    assert "none of these runs measured its replay" in capsys.readouterr().err
    assert main(["compare", *map(str, files), plain.as_posix(), "--csv", str(tmp_path / "runs.csv")]) == 0
    with open(tmp_path / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["replay_diversity_ratio"] for row in rows) == ["", "0.100000", "0.110000", "0.600000", "0.610000"]
