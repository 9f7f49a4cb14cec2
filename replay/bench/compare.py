"""``replay-bench compare``: a Markdown table of results grouped by (method, prior + params, stream), or one
CSV row per run; ``replay-bench paired``: the difference between two configurations, paired by seed."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional, Sequence

import numpy as np

from replay import cl_metrics
from replay.bench.config import saved_config
from replay.bench.results import csv_text
from replay.bench.sweep import differing_keys
from replay.errors import UserInputError
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


def replay_chunk(result: dict) -> int:
    """How many iterations of replay the run drew at once (1 in runs from before the option existed)."""
    return result["config"].get("method", {}).get("replay_chunk", 1)


def method_label(result: dict) -> str:
    """The method's name, marked when the run trained in another precision than fp32 or drew its replay in
    chunks (settings that leave the method unchanged but change the run), and with every other key that differs
    from its default outside the prior's (``prior_label`` shows those), e.g. ``optimizer.lr=0.0001``."""
    precision = result["config"].get("precision", "fp32")
    marks = ([precision] if precision != "fp32" else []) + ([f"replay_chunk {replay_chunk(result)}"]
                                                             if replay_chunk(result) != 1 else [])
    marks += [key for key in differing_keys(saved_config(result))
              if not key.startswith(("prior.", "precision=", "method.replay_chunk="))]
    return f"{result['method']} ({', '.join(marks)})" if marks else result["method"]


def shown_method_params(result: dict) -> str:
    """The method's keys that differ from their defaults (the method's and the stream protocol's), e.g.
    ``gate_prop=0.6, si_c=100000000.0``; ``replay_chunk`` has a column of its own."""
    keys = [key.removeprefix("method.") for key in differing_keys(saved_config(result))
            if key.startswith("method.") and not key.startswith("method.replay_chunk=")]
    return ", ".join(keys)


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


def compare_table(results: list[dict], references: Sequence[dict] = ()) -> str:
    """One row per group: final average accuracy, backward transfer and forgetting (mean ± std over seeds), the
    per-task final accuracies, and with ``references`` (e.g. joint runs) the intransigence against the reference
    of the same stream and seed (``replay.cl_metrics``)."""
    groups = group_results(results)
    n_tasks = max(len(r["accuracy_matrix"][-1]) for r in results)
    by_seed = {(r["stream"], r["seed"]): r["accuracy_matrix"] for r in references}
    measures = ["final avg acc", "BWT", "forgetting", *(["intransigence"] if references else [])]
    header = ["method", "prior", "stream", "seeds", *measures, *[f"task {j + 1}" for j in range(n_tasks)], "it/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (method, prior, stream, _), members in sorted(groups.items()):
        finals = [mean_std([r["final_average_accuracy"] for r in members]),
                  mean_std([cl_metrics.backward_transfer(r["accuracy_matrix"]) for r in members]),
                  mean_std([cl_metrics.average_forgetting(r["accuracy_matrix"]) for r in members])]
        if references:
            matched = [(r["accuracy_matrix"], by_seed.get((r["stream"], r["seed"]))) for r in members]
            finals.append(mean_std([cl_metrics.intransigence(m, ref) for m, ref in matched if ref is not None])
                          if any(ref is not None for _, ref in matched) else "")
        last_rows = np.array([r["accuracy_matrix"][-1] for r in members])
        per_task = [f"{last_rows[:, j].mean():.3f}" if j < last_rows.shape[1] else "" for j in range(n_tasks)]
        speed = np.mean([r.get("iterations_per_second", float("nan")) for r in members])
        seeds = ",".join(str(r["seed"]) for r in sorted(members, key=lambda r: r["seed"]))
        lines.append("| " + " | ".join([method, prior, stream, seeds, *finals, *per_task, f"{speed:.1f}"]) + " |")
    return "\n".join(lines)


#: measures of the replay (``replay.quality``) that ``runs_csv`` and ``replay-bench plot --versus`` read
REPLAY_MEASURES = ("diversity_ratio", "min_diversity_ratio", "recall", "coverage", "precision", "density",
                   "frechet_distance", "class_entropy")


def final_replay_quality(result: dict) -> Optional[dict]:
    """The replay quality measured after the run's last experience that recorded one (None: not recorded)."""
    recorded = [q for q in result.get("replay_quality_per_experience") or [] if q]
    return recorded[-1] if recorded else None


def runs_csv(results: list[dict]) -> str:
    """One row per run, in the table's order: what it ran, its seed, final average accuracy, final accuracy on
    each task (empty beyond a stream's length), its training time and the last recorded measures of its replay
    (``replay_<measure>``; empty where the run did not measure them)."""
    n_tasks = max(len(r["accuracy_matrix"][-1]) for r in results)
    header = ["method", "method_params", "precision", "replay_chunk", "prior", "prior_params", "stream", "n_experiences", "seed",
              "final_average_accuracy", "backward_transfer", "average_forgetting",
              *[f"task_{j + 1}" for j in range(n_tasks)], "total_train_seconds",
              "iterations_per_second", *[f"replay_{measure}" for measure in REPLAY_MEASURES]]
    rows = []
    for result in sorted(results, key=lambda r: (*group_key(r), r["seed"])):
        last = result["accuracy_matrix"][-1]
        rows.append([result["method"], shown_method_params(result), result["config"].get("precision", "fp32"),
                     replay_chunk(result),
                     result["prior"] or "", shown_params(result), result["stream"], len(last), result["seed"],
                     f"{result['final_average_accuracy']:.6f}",
                     f"{cl_metrics.backward_transfer(result['accuracy_matrix']):.6f}",
                     f"{cl_metrics.average_forgetting(result['accuracy_matrix']):.6f}",
                     *[f"{last[j]:.6f}" if j < len(last) else "" for j in range(n_tasks)],
                     f"{sum(result['train_seconds_per_experience']):.1f}",
                     f"{result.get('iterations_per_second', float('nan')):.2f}",
                     *[f"{quality[m]:.6f}" if quality else "" for m in REPLAY_MEASURES
                       for quality in [final_replay_quality(result)]]])
    return csv_text(header, rows)


def paired_difference(baseline: list[dict], other: list[dict]) -> dict[str, Any]:
    """Final average accuracy of ``other`` minus ``baseline``, paired by seed.

    A seed fixes the class order (and the initialisation wherever both configurations build the same modules in
    the same order), so the per-seed differences remove the spread that comes from it. Returns the seeds, both
    accuracies and their differences, the mean difference with its standard error, the 95% confidence interval
    (Student's t, n - 1 degrees of freedom) and the two-sided p-value of the paired t-test against no difference.
    """
    from scipy import stats  # only here: the table and plot commands do not pay for its import

    acc_base = {r["seed"]: r["final_average_accuracy"] for r in baseline}
    acc_other = {r["seed"]: r["final_average_accuracy"] for r in other}
    seeds = sorted(set(acc_base) & set(acc_other))
    if len(seeds) < 2:
        raise UserInputError(f"a paired comparison needs at least 2 seeds run by both; common seeds: {seeds}")
    diffs = np.array([acc_other[s] - acc_base[s] for s in seeds])
    n, mean = len(diffs), float(diffs.mean())
    se = float(diffs.std(ddof=1) / np.sqrt(n))
    half_width = float(stats.t.ppf(0.975, n - 1)) * se
    if se > 0:
        p_value = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    else:  # identical differences on every seed
        p_value = 1.0 if mean == 0 else 0.0
    return {"seeds": seeds, "baseline": [acc_base[s] for s in seeds], "other": [acc_other[s] for s in seeds],
            "differences": diffs.tolist(), "mean": mean, "se": se, "ci95": (mean - half_width, mean + half_width),
            "p_value": p_value}


def paired_report(baseline: list[dict], other: list[dict]) -> str:
    """Markdown: one row per common seed, then the mean difference, its 95% interval and p-value."""
    d = paired_difference(baseline, other)
    names = [f"{method_label(group[0])} {prior_label(group[0])}" for group in (baseline, other)]
    lines = [f"| seed | {names[0]} | {names[1]} | difference |", "|---|---|---|---|"]
    lines += [f"| {s} | {a:.4f} | {b:.4f} | {x:+.4f} |"
              for s, a, b, x in zip(d["seeds"], d["baseline"], d["other"], d["differences"])]
    low, high = d["ci95"]
    lines.append(f"\n{names[1]} minus {names[0]} over {len(d['seeds'])} seeds: {d['mean']:+.4f} ± {d['se']:.4f} "
                 f"(standard error); 95% interval [{low:+.4f}, {high:+.4f}]; paired t-test p = {d['p_value']:.3f}")
    return "\n".join(lines)
