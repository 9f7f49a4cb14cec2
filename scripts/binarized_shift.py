#!/usr/bin/env python3
"""How much does the binarized prior's radius r change a trained VAE's regulariser? From a run's checkpoint.

Encodes test images of every task with the final encoder (GR: the generator's; BI-R: the model's) and, against the
prior's mode for each image (N(0, I) for the Gaussian priors; the image's class mode for the GMM priors), reports
* the posterior: median |mu - m| and median posterior std per latent dimension;
* the prior's mode std per dimension (1 for the Gaussian priors; the learned modes' for the GMM ones);
* for each radius: the mean binarized KL (Hu & Rostami, eq. 2-5; ``replay.priors.divergences``) against the plain KL
  (r = 0) and their relative difference, and the median of r / |mu - m|, the relative change of the KL's pull
  on mu (its gradient is (|mu - m| - r) sign(mu - m) / var instead of (mu - m) / var).
A radius that moves the KL by a fraction of a percent cannot change what the VAE learns by much.

    python scripts/binarized_shift.py runs/permuted_mnist/gr_binarized_gaussian/seed0 [--radii 0.0002 0.01 0.1]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from replay.bench.runner import load_run
from replay.priors.divergences import binarized_gaussian_kl


def quantiles(values: torch.Tensor) -> str:
    q10, q50, q90 = torch.quantile(values.flatten().float()[:1_000_000], torch.tensor([0.1, 0.5, 0.9])).tolist()
    return f"{q50:.3f} (10-90%: {q10:.3f}-{q90:.3f})"


@torch.no_grad()
def encoded_test_images(experiment, per_task: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mu, logvar, labels) of the first ``per_task`` test images of every task, through the final encoder."""
    plugin = experiment.replay_plugin
    encoder = plugin.method.generator if hasattr(plugin.method, "generator") else experiment.strategy.model
    encoder.eval()
    mus, logvars, labels = [], [], []
    for experience in experiment.benchmark.test_stream:
        x, y, *_ = next(iter(torch.utils.data.DataLoader(experience.dataset, batch_size=per_task)))
        posterior = encoder.encode(x)
        mus.append(posterior.mean), logvars.append(posterior.logvar), labels.append(y)
    return torch.cat(mus), torch.cat(logvars), torch.cat(labels)


def prior_modes(prior, labels: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and log-variance of each image's prior mode: its class's for a mixture, else N(0, I)."""
    if hasattr(prior, "means"):
        return prior.means[labels], prior.logvars[labels]
    return torch.zeros_like(like), torch.zeros_like(like)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders holding checkpoint.pt")
    parser.add_argument("--radii", nargs="+", type=float, default=[0.0002, 0.002, 0.01, 0.1, 1.0])
    parser.add_argument("--per-task", type=int, default=1000, help="test images per task")
    parser.add_argument("--root", default=None, help="data root (default: the run's)")
    args = parser.parse_args()
    for folder in map(Path, args.runs):
        experiment, state = load_run(folder, args.root)
        config, model = experiment.config, experiment.strategy.model
        prior = getattr(experiment.replay_plugin, "generator", model).prior
        mu, logvar, labels = encoded_test_images(experiment, args.per_task)
        mean, logvar_p = prior_modes(prior, labels, mu)
        distance = (mu - mean).abs()
        print(f"{folder}: {config['method']['name']} with {config['prior']['name']} (r = {prior.r}), "
              f"{len(labels)} test images after {state['finished_experiences']} experiences")
        print(f"  median |mu - m| {quantiles(distance)}; posterior std {quantiles((0.5 * logvar).exp())}; "
              f"prior mode std {quantiles((0.5 * logvar_p).exp())}")
        plain = binarized_gaussian_kl(mu, logvar, mean, logvar_p, 0.0).mean().item()
        for r in args.radii:
            kl = binarized_gaussian_kl(mu, logvar, mean, logvar_p, r).mean().item()
            print(f"  r = {r:g}{' (the run)' if r == prior.r else ''}: KL {kl:.3f} nats against {plain:.3f} at r = 0 "
                  f"({(kl - plain) / plain:+.2%}); median r / |mu - m| {(r / distance).median().item():.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
