"""Generative replay in a plain Avalanche pipeline: the stock ``SplitMNIST`` with its default transforms
(pixels normalised with MNIST's mean and std; ``--unit-pixels`` keeps them in [0, 1]), Avalanche's ``SimpleMLP`` as the solver, ``Naive``.

    python examples/gr_split_mnist.py --data data --iterations 2000
"""
from __future__ import annotations

from typing import Optional, Sequence

from avalanche.benchmarks.classic import SplitMNIST
from avalanche.core import SupervisedPlugin
from avalanche.models import SimpleMLP
from avalanche.training.determinism.rng_manager import RNGManager

from replay import GenerativeReplayPlugin, IterationBudget, SeenUnitsMask
from replay.generators import mlp_vae
from replay.priors import build

try:
    from examples.common import (FinalAccuracy, UNIT_PIXELS, mnist_transforms, naive,
                                 split_mnist_arguments, report)
except ImportError:  # run as a script
    from common import (FinalAccuracy, UNIT_PIXELS, mnist_transforms, naive,
                        split_mnist_arguments, report)


def main(argv: Optional[Sequence[str]] = None, prior: str = "gaussian",
         other_plugins: Sequence[SupervisedPlugin] = (), name: str = "GR") -> FinalAccuracy:
    """Train GR with ``prior`` (and the user's ``other_plugins``) on the stream; return its final accuracy."""
    args = split_mnist_arguments(__doc__.splitlines()[0]).parse_args(argv)
    RNGManager.set_random_seeds(args.seed)
    benchmark = SplitMNIST(n_experiences=5, seed=args.seed, dataset_root=args.data,
                           **mnist_transforms(args.unit_pixels))
    solver = SimpleMLP(num_classes=10, hidden_size=400, hidden_layers=2, drop_rate=0)
    # the generator adopts the stream's normalisation and replays normalised images, like the data
    generator = mlp_vae((1, 28, 28), build(prior, latent_dim=100, n_classes=10))
    plugins = [GenerativeReplayPlugin(generator, lr=1e-3), *other_plugins, SeenUnitsMask(), IterationBudget(args.iterations)]
    return report(naive(solver, 1e-3, 128, plugins, args.quiet), benchmark,
                  f"{name} ({prior}) on stock SplitMNIST{UNIT_PIXELS[args.unit_pixels]}, seed {args.seed}")


if __name__ == "__main__":
    main()
