"""``replay-bench shares``: how each configuration's replay divides among the earlier experiences.

Reads ``replay_shares_per_experience`` (recorded by ``ReplayShareMetric``): for experience t (1-based) the share
of each earlier experience 1..t-1 in the replay it trained on. Prints, per configuration (seeds averaged), the
last experience's shares and the smallest of them against the uniform 1/(t-1); draws one panel per
configuration with a stacked bar per experience (a uniform replay gives equal segments).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from replay.bench.compare import group_results
from replay.bench.plots import check_figure_path, plt, save_figure
from replay.errors import UserInputError


def mean_shares(members: list[dict]) -> dict[int, np.ndarray]:
    """Experience index -> the shares averaged over the runs that recorded them (runs made before the metric
    existed, or resumed from such a checkpoint, lack some or all)."""
    recorded: dict[int, list[list[float]]] = {}
    for result in members:
        for index, shares in enumerate(result.get("replay_shares_per_experience") or []):
            if shares is not None:
                recorded.setdefault(index, []).append(shares)
    return {index: np.mean(rows, axis=0) for index, rows in sorted(recorded.items())}


def groups_with_shares(results: list[dict]) -> dict[tuple, dict[int, np.ndarray]]:
    groups = {key: mean_shares(members) for key, members in sorted(group_results(results).items())}
    groups = {key: shares for key, shares in groups.items() if shares}
    if not groups:
        raise UserInputError("none of these results recorded replay shares (GR and BI-R runs record them since "
                         "ReplayShareMetric; naive and joint do not replay)")
    return groups


def shares_table(results: list[dict]) -> str:
    """Markdown: per configuration, the last recorded experience's share of each earlier one."""
    lines = ["| method | prior | experience | shares of experiences 1.. | smallest / uniform |", "|---|---|---|---|---|"]
    for (method, prior, _, _), shares in groups_with_shares(results).items():
        index, last = max(shares.items())
        lines.append(f"| {method} | {prior} | {index + 1} | {' '.join(f'{s:.3f}' for s in last)} | "
                     f"{last.min() * len(last):.2f} |")
    return "\n".join(lines)


def plot_shares(results: list[dict], out: Path) -> Path:
    check_figure_path(out)
    groups = groups_with_shares(results)
    n_origins = max(len(s) for shares in groups.values() for s in shares.values())
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, n_origins))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (key, shares) in zip(axes[0], groups.items()):
        for index, row in shares.items():
            bottoms = np.concatenate([[0.0], np.cumsum(row)[:-1]])
            for origin, (share, bottom) in enumerate(zip(row, bottoms)):
                ax.bar(index + 1, share, bottom=bottom, color=colours[origin], edgecolor="white", linewidth=0.5,
                       label=f"from {origin + 1}" if index == max(shares) else None)
        ax.set(xlabel="while training experience", ylabel="share of the replay", ylim=(0, 1),
               title=key[0] if key[1] == "-" else f"{key[0]} / {key[1]}", xticks=[index + 1 for index in shares])
    axes[0, -1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5), title="experience")
    fig.tight_layout()
    return save_figure(fig, out)
