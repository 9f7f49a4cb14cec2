"""Brain-inspired replay in a plain Avalanche pipeline: the stock ``SplitMNIST`` with its default transforms,
a ``BIRModel`` (classifier and VAE in one network, GMM prior, gates), ``Naive``.

    python examples/bir_split_mnist.py --data data --iterations 2000
"""
from __future__ import annotations

from typing import Optional, Sequence

from avalanche.benchmarks.classic import SplitMNIST
from avalanche.training.determinism.rng_manager import RNGManager

from replay import BrainInspiredReplayPlugin, IterationBudget, SeenUnitsMask
from replay.models import BIRModel
from replay.priors import build

try:
    from examples.common import (FinalAccuracy, UNIT_PIXELS, mnist_transforms, naive,
                                 split_mnist_arguments, report)
except ImportError:  # run as a script
    from common import (FinalAccuracy, UNIT_PIXELS, mnist_transforms, naive,
                        split_mnist_arguments, report)


def main(argv: Optional[Sequence[str]] = None) -> FinalAccuracy:
    args = split_mnist_arguments(__doc__.splitlines()[0]).parse_args(argv)
    RNGManager.set_random_seeds(args.seed)
    benchmark = SplitMNIST(n_experiences=5, seed=args.seed, dataset_root=args.data,
                           **mnist_transforms(args.unit_pixels))
    model = BIRModel((1, 28, 28), 10, build("gmm", latent_dim=100, n_classes=10), hidden=(400, 400), gate_prop=0.8,
                     seed=args.seed)
    plugins = [BrainInspiredReplayPlugin(), SeenUnitsMask(), IterationBudget(args.iterations)]
    return report(naive(model, 1e-3, 128, plugins, args.quiet), benchmark,
                  f"BI-R (gmm) on stock SplitMNIST{UNIT_PIXELS[args.unit_pixels]}, seed {args.seed}")


if __name__ == "__main__":
    main()
