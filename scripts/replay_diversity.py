#!/usr/bin/env python3
"""How varied is the replay? Per class, the pixel-wise standard deviation across generated samples, against
the same for the real test images of that class, from a finished run's checkpoint.

For BI-R the samples are the model's conditional replay (its prior's ``sample`` for the class, decoded through
the class's gate). For GR they come from the generator, with the class given when its prior is
class-conditional. Otherwise they are drawn unconditionally and grouped by the final solver's prediction.
``acc`` is the share of samples that the final model classifies as their class. A prior whose samples all
decode to one image per class has a ratio near 0. Replay of that kind keeps old classes poorly.

For GR it also reports the replay as the plugin draws it (unconditional samples, labelled by the solver):
the share of each class among them (and of each experience's classes), and how confident the final solver
is (mean top probability, share of samples whose top probability is below 0.9). A generator that
under-represents a class, or whose samples fall between classes, replays that class poorly.

    python scripts/replay_diversity.py runs/split_mnist/bir_cgm/seed0 runs/split_mnist/bir_gmm/seed0
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from replay.bench.runner import load_run


@torch.no_grad()
def class_samples(experiment, n: int, classes: list[int]) -> dict[int, torch.Tensor]:
    """``n`` replay samples for each class, in the model's replay space."""
    model = experiment.strategy.model.eval()
    plugin = experiment.replay_plugin
    generator = getattr(plugin, "generator", None)
    if generator is None:  # BI-R: the model generates
        return {c: model.generate(torch.full((n,), c)) for c in classes}
    generator.eval()
    if generator.prior.conditional:
        return {c: generator.generate(n, torch.full((n,), c)) for c in classes}
    x = generator.generate(n * len(classes))
    predicted = model(x).argmax(1)
    return {c: x[predicted == c] for c in classes}


@torch.no_grad()
def replay_balance(experiment, n: int, n_classes: int) -> str:
    """Class and experience shares and solver confidence of ``n`` unconditional generator samples (GR's replay)."""
    x = experiment.replay_plugin.generator.eval().generate(n)
    top, predicted = torch.softmax(experiment.strategy.model(x), 1).max(1)
    shares = torch.bincount(predicted, minlength=n_classes)[:n_classes].float() / n
    per_experience = [shares[list(e.classes_in_this_experience)].sum().item() for e in experiment.benchmark.train_stream]
    return (f"  GR replay (unconditional, {n} samples): class shares {' '.join(f'{v:.3f}' for v in shares.tolist())}; "
            f"min {shares.min():.3f}; classes below {0.2 / n_classes:.2%}: {(shares < 0.2 / n_classes).sum().item()}; "
            f"mean top probability {top.mean():.3f}; share below 0.9 {(top < 0.9).float().mean():.3f}\n"
            f"  GR replay by experience: {' '.join(f'{v:.3f}' for v in per_experience)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run folders holding result.json and checkpoint.pt")
    parser.add_argument("--samples", type=int, default=500, help="samples per class")
    parser.add_argument("--root", default=None, help="data root (default: the run's)")
    args = parser.parse_args()
    for folder in map(Path, args.runs):
        experiment, _ = load_run(folder, args.root)
        config, model = experiment.config, experiment.strategy.model
        model.eval()
        test = [(x, y) for e in experiment.benchmark.test_stream
                for x, y, *_ in torch.utils.data.DataLoader(e.dataset, batch_size=len(e.dataset))]
        x_real, y_real = torch.cat([x for x, _ in test]), torch.cat([y for _, y in test])
        classes = sorted(set(y_real.tolist()))
        samples = class_samples(experiment, args.samples, classes)
        ratios = []
        print(f"{folder}: {config['method']['name']} with {config['prior']['name']}")
        for c in classes:
            x = samples[c]
            real = x_real[y_real == c].flatten(1).std(0).mean().item()
            if len(x) < 2:
                print(f"  class {c}: fewer than 2 samples")
                continue
            generated = x.flatten(1).std(0).mean().item()
            with torch.no_grad():
                accuracy = (model(x).argmax(1) == c).float().mean().item()
            ratios.append(generated / real)
            print(f"  class {c}: pixel std generated {generated:.3f}, real {real:.3f}, ratio {generated / real:.2f}, "
                  f"acc {accuracy:.3f}")
        print(f"  mean ratio {sum(ratios) / len(ratios):.2f}")
        if getattr(experiment.replay_plugin, "generator", None) is not None:
            print(replay_balance(experiment, args.samples * len(classes), len(classes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
