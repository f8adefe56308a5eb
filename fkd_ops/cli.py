"""The `fkd-ops` command."""

from __future__ import annotations

import argparse
import sys


def _demo(_args: argparse.Namespace) -> int:
    import numpy as np

    import fkd_ops

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, fkd_ops.IMAGE_SIZE, fkd_ops.IMAGE_SIZE), dtype=np.uint8)
    keypoints = rng.uniform(0, fkd_ops.IMAGE_SIZE, (8, fkd_ops.NUM_COORDINATES)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    x, kp, flipped = fkd_ops.random_flip_normalize(images, keypoints, seed=[0, 1])
    result = fkd_ops.masked_rmse(kp, keypoints)
    print(f"flipped {int(np.sum(flipped))} of 8 faces; images in [{float(np.min(x)):.3f}, {float(np.max(x)):.3f}]")
    print(f"masked RMSE between flipped and original keypoints: {float(result.loss):.3f} px "
          f"over {int(result.count)} present coordinates")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fkd-ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the three ops on a random batch").set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
