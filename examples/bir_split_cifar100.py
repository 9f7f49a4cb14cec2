"""Brain-inspired replay on the stock ``SplitCIFAR100`` (its default transforms: crops, flips, normalisation)
with the conv path: frozen conv layers turn images into features and the model replays features (internal
replay). Pass conv layers pre-trained on CIFAR-10 (``replay-bench pretrain-conv --out data/conv_cifar10.pt``);
without them the frozen layers keep their random initialisation, which runs but learns little.

    python examples/bir_split_cifar100.py --data data --iterations 5000 --conv-weights data/conv_cifar10.pt
"""
from __future__ import annotations

from typing import Optional, Sequence

from avalanche.benchmarks.classic import SplitCIFAR100
from avalanche.training.determinism.rng_manager import RNGManager

from replay import BrainInspiredReplayPlugin, IterationBudget, SeenUnitsMask
from replay.models import BIRModel, ConvFeatureExtractor
from replay.priors import build

try:
    from examples.common import FinalAccuracy, arguments, naive, report
except ImportError:  # run as a script
    from common import FinalAccuracy, arguments, naive, report


def main(argv: Optional[Sequence[str]] = None) -> FinalAccuracy:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--conv-weights", default=None, help="pre-trained conv layers (replay-bench pretrain-conv)")
    args = parser.parse_args(argv)
    RNGManager.set_random_seeds(args.seed)
    benchmark = SplitCIFAR100(n_experiences=10, seed=args.seed, dataset_root=args.data)
    extractor = ConvFeatureExtractor.load_frozen(args.conv_weights) if args.conv_weights else ConvFeatureExtractor(frozen=True)
    model = BIRModel((3, 32, 32), 100, build("gmm", latent_dim=100, n_classes=100), hidden=(2000, 2000),
                     gate_prop=0.7, feature_extractor=extractor, seed=args.seed)
    plugins = [BrainInspiredReplayPlugin(), SeenUnitsMask(), IterationBudget(args.iterations)]
    return report(naive(model, 1e-4, 256, plugins, args.quiet), benchmark,
                  f"BI-R (gmm, internal replay) on stock SplitCIFAR100, seed {args.seed}")


if __name__ == "__main__":
    main()
