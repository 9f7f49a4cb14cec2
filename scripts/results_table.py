#!/usr/bin/env python3
"""Markdown table of results beside Hu & Rostami's Table 2 and the BI-R reference code's accuracies (van de Ven's code,
run unmodified on one of our machines, seed 1).

    python scripts/results_table.py results/split_mnist      # folders of <config>[_<tag>]/seed<N>.json or .../result.json
    python scripts/results_table.py results/permuted_mnist

Rows are grouped by method (marked with its precision when not fp32), prior and its telling parameters.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from replay.bench.compare import group_results, shown_params
from replay.bench.results import read_result

# (stream, method, prior, r) -> class-IL numbers of Hu & Rostami's Table 2 (binarized priors with the paper's r)
PAPER_TABLE2 = {
    ("split_mnist", "gr", "gaussian", None): 0.8259, ("split_mnist", "gr", "binarized_gaussian", 0.01): 0.8519,
    ("split_mnist", "bir", "gaussian", None): 0.8418, ("split_mnist", "bir", "binarized_gaussian", 0.01): 0.8508,
    ("split_mnist", "bir", "gmm", None): 0.9029, ("split_mnist", "bir", "binarized_gmm", 0.002): 0.9204,
    ("permuted_mnist", "gr", "gaussian", None): 0.9153, ("permuted_mnist", "gr", "binarized_gaussian", 0.0002): 0.9176,
    ("permuted_mnist", "bir", "gaussian", None): 0.9712, ("permuted_mnist", "bir", "binarized_gaussian", 0.0001): 0.9715,
    ("permuted_mnist", "bir", "gmm", None): 0.9739, ("permuted_mnist", "bir", "binarized_gmm", 0.01): 0.9743,
}
# (stream, method, prior) -> the reference code on our machine (split MNIST only)
ORIGINAL_CODE = {("split_mnist", "gr", "gaussian"): 0.908, ("split_mnist", "bir", "gmm"): 0.934,
                  ("split_mnist", "naive", None): 0.197}


def main() -> int:
    paths = [p for folder in sys.argv[1:] for p in sorted(Path(folder).rglob("*.json"))]
    results = [read_result(p) for p in paths]
    lines = ["| method | prior | params | seeds | final avg acc (ours, mean ± std) | per task (mean) | train s / run | Hu & Rostami Table 2 | reference code |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (label, _, stream, _), members in sorted(group_results(results).items()):
        method, prior, params = members[0]["method"], members[0]["prior"], members[0].get("prior_params") or {}
        r = params.get("r")
        finals = np.array([m["final_average_accuracy"] for m in members])
        per_task = np.mean([m["accuracy_matrix"][-1] for m in members], 0)
        seconds = np.mean([m["total_train_seconds"] for m in members])
        std = finals.std(ddof=1) if len(finals) > 1 else 0.0
        seed_value = PAPER_TABLE2.get((stream, method, prior, r), "")
        lines.append(f"| {label} | {prior or '-'} | {shown_params(members[0])} | {len(members)} | {finals.mean():.4f} ± {std:.4f} | "
                     f"{' '.join(f'{a:.3f}' for a in per_task)} | {seconds:.0f} | {seed_value} | {ORIGINAL_CODE.get((stream, method, prior), '')} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
