"""Generative replay together with Avalanche's own ``LwFPlugin`` (distillation on the current data) on the
stock ``SplitMNIST``: our plugin is one plugin among the user's.

    python examples/gr_lwf_split_mnist.py --data data --iterations 2000
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import LwFPlugin

from replay import GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.priors import build

try:
    from examples.common import arguments, evaluator, seed_everything, train_and_evaluate
except ImportError:  # run as a script
    from common import arguments, evaluator, seed_everything, train_and_evaluate


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    seed_everything(args.seed)
    benchmark = SplitMNIST(n_experiences=5, seed=args.seed, dataset_root=args.data)
    solver = SimpleMLP(num_classes=10, hidden_size=400, hidden_layers=2, drop_rate=0)
    generator = mlp_vae((1, 28, 28), build("gaussian", latent_dim=100))
    strategy = Naive(model=solver, optimizer=torch.optim.Adam(solver.parameters(), lr=1e-3), train_mb_size=128,
                     train_epochs=1, eval_mb_size=1000, evaluator=evaluator(args.quiet),
                     plugins=[GenerativeReplayPlugin(generator, lr=1e-3), LwFPlugin(alpha=1.0, temperature=2.0),
                              SeenUnitsMask(), IterationBudget(args.iterations)])
    accuracy = train_and_evaluate(strategy, benchmark)
    print(f"GR (gaussian) + LwF on stock SplitMNIST, seed {args.seed}: accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
