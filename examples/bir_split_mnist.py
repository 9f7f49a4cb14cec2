"""Brain-inspired replay in a plain Avalanche pipeline: the stock ``SplitMNIST`` with its default transforms,
a ``BIRModel`` (classifier and VAE in one network, GMM prior, gates), ``Naive``.

    python examples/bir_split_mnist.py --data data --iterations 2000
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.benchmarks.classic import SplitMNIST
from avalanche.training import Naive

from replay import BrainInspiredReplayPlugin, IterationBudget, SeenUnitsMask
from replay.models import BIRModel
from replay.priors import build

try:
    from examples.common import arguments, evaluator, seed_everything, train_and_evaluate
except ImportError:  # run as a script
    from common import arguments, evaluator, seed_everything, train_and_evaluate


def main(argv: Optional[Sequence[str]] = None) -> float:
    args = arguments(__doc__.splitlines()[0]).parse_args(argv)
    seed_everything(args.seed)
    benchmark = SplitMNIST(n_experiences=5, seed=args.seed, dataset_root=args.data)
    model = BIRModel((1, 28, 28), 10, build("gmm", latent_dim=100, n_classes=10), hidden=(400, 400), gate_prop=0.8,
                     seed=args.seed)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3), train_mb_size=128,
                     train_epochs=1, eval_mb_size=1000, evaluator=evaluator(args.quiet),
                     plugins=[BrainInspiredReplayPlugin(), SeenUnitsMask(), IterationBudget(args.iterations)])
    accuracy = train_and_evaluate(strategy, benchmark)
    print(f"BI-R (gmm) on stock SplitMNIST, seed {args.seed}: accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
