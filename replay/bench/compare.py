"""``replay-bench compare``: a Markdown table of results grouped by (method, prior + params, stream)."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from replay.priors import prior_parameters


def shown_params(result: dict) -> str:
    """The prior parameters that tell runs apart: ``r`` always (the binarized priors' key figure), others
    where they differ from the prior's defaults, e.g. ``variance=1.0``."""
    params = result.get("prior_params") or {}
    defaults = prior_parameters(result["prior"]) if result["prior"] else {}
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k == "r" or v != defaults.get(k))


def prior_label(result: dict) -> str:
    """The prior's name with its telling parameters, e.g. ``cgm (variance=1.0)``."""
    prior, params = result["prior"] or "-", shown_params(result)
    return f"{prior} ({params})" if params else prior


def method_label(result: dict) -> str:
    """The method's name, marked when the run trained in another precision than fp32."""
    precision = result["config"].get("precision", "fp32")
    return result["method"] if precision == "fp32" else f"{result['method']} ({precision})"


def group_key(result: dict) -> tuple:
    return method_label(result), prior_label(result), result["stream"], result["n_experiences"]


def group_results(results: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for result in results:
        groups[group_key(result)].append(result)
    return dict(groups)


def mean_std(values: Sequence[float]) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.4f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.4f}"


def compare_table(results: list[dict]) -> str:
    """One row per group: final average accuracy (mean ± std over seeds) and per-task final accuracies."""
    groups = group_results(results)
    n_tasks = max(len(r["accuracy_matrix"][-1]) for r in results)
    header = ["method", "prior", "stream", "seeds", "final avg acc", *[f"task {j + 1}" for j in range(n_tasks)], "it/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (method, prior, stream, _), members in sorted(groups.items()):
        finals = [r["final_average_accuracy"] for r in members]
        last_rows = np.array([r["accuracy_matrix"][-1] for r in members])
        per_task = [f"{last_rows[:, j].mean():.3f}" if j < last_rows.shape[1] else "" for j in range(n_tasks)]
        speed = np.mean([r.get("iterations_per_second", float("nan")) for r in members])
        seeds = ",".join(str(r["seed"]) for r in sorted(members, key=lambda r: r["seed"]))
        lines.append("| " + " | ".join([method, prior, stream, seeds, mean_std(finals), *per_task, f"{speed:.1f}"]) + " |")
    return "\n".join(lines)
