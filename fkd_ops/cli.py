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
    print(f"flipped {int(np.sum(flipped))} of 8 faces; images in [{float(np.min(x)):.3f}, {float(np.max(x)):.3f}]")
    # Score a constant guess (the image centre) against the flipped keypoints: the
    # loss skips the missing ones. (Scoring the flipped keypoints against the
    # originals would give NaN: a point missing in one slot lands in its partner's,
    # and a NaN prediction at a present target propagates, by design.)
    centre = np.full(keypoints.shape, fkd_ops.IMAGE_SIZE / 2, dtype=np.float32)
    result = fkd_ops.masked_rmse(centre, kp)
    print(f"masked RMSE of an image-centre guess: {float(result.loss):.3f} px "
          f"over {int(result.count)} present coordinates")
    _, back = fkd_ops.flip_horizontal(x, kp, flipped)
    # 96 - (96 - x) rounds in float32: equal to within an ulp of 96, NaN in place.
    same = np.allclose(np.asarray(back), keypoints, rtol=0, atol=1e-5, equal_nan=True)
    print(f"flipping the flipped faces back restores the keypoints: {same}")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fkd-ops", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the three ops on a random batch").set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
