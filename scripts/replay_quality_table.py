"""The replay-quality table of finished runs: accuracy, backward transfer and forgetting beside what each run's
generator replays after its last experience (``replay_quality_per_experience`` of ``result.json``; measures in the
judge classifier's feature space, see ``replay.quality``).

    python scripts/replay_quality_table.py runs/quality/*/seed0/result.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay import cl_metrics  # noqa: E402
from replay.bench.compare import method_label, prior_label  # noqa: E402
from replay.bench.results import read_result  # noqa: E402

COLUMNS = ("final acc", "BWT", "forgetting", "FD", "precision", "recall", "density", "coverage", "class entropy",
           "min class share", "diversity (mean / min)", "judge agrees")


def row(result: dict) -> list[str]:
    matrix = result["accuracy_matrix"]
    quality = (result.get("replay_quality_per_experience") or [None])[-1]
    if quality is None:
        return [f"{result['final_average_accuracy']:.3f}", *[""] * (len(COLUMNS) - 1)]
    agreement = quality.get("judge_agreement")
    return [f"{result['final_average_accuracy']:.3f}", f"{cl_metrics.backward_transfer(matrix):+.3f}",
            f"{cl_metrics.average_forgetting(matrix):.3f}", f"{quality['frechet_distance']:.1f}",
            f"{quality['precision']:.3f}", f"{quality['recall']:.3f}", f"{quality['density']:.3f}",
            f"{quality['coverage']:.3f}", f"{quality['class_entropy']:.3f}",
            f"{min(quality['class_shares'].values()):.3f}",
            f"{quality['diversity_ratio']:.2f} / {quality['min_diversity_ratio']:.2f}",
            "" if agreement is None else f"{agreement:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    results = sorted((read_result(path) for path in args.results), key=lambda r: (method_label(r), prior_label(r), r["seed"]))
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for result in results:
        print(f"| {method_label(result)} {prior_label(result)}, seed {result['seed']} | " + " | ".join(row(result)) + " |")


if __name__ == "__main__":
    main()
