"""Draws a contact sheet of synthetic faces with their keypoints, to check by eye
that each keypoint sits on its feature.

Usage: python benchmarks/synthetic_contact_sheet.py [--n 24] [--seed 0] [--out runs/synthetic_faces.png] [--no-points]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fkd_ops.data.synthetic import generate_faces  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="draw test-set faces")
    parser.add_argument("--no-points", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "synthetic_faces.png")
    args = parser.parse_args()

    faces = generate_faces(args.n, args.seed, test=args.test)
    cols = 6
    rows = -(-args.n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    colours = plt.cm.tab20(np.linspace(0, 1, 15))
    for i, ax in enumerate(axes.ravel()[: args.n]):
        ax.imshow(faces.images[i], cmap="gray", vmin=0, vmax=255, extent=(0, 96, 96, 0))
        if not args.no_points:
            kp = faces.keypoints[i].reshape(15, 2)
            filled = faces.present[i]
            ax.scatter(kp[filled, 0], kp[filled, 1], s=9, c=colours[filled], marker="o", linewidths=0)
            ax.scatter(kp[~filled, 0], kp[~filled, 1], s=9, c=colours[~filled], marker="x", linewidths=0.8)
    fig.tight_layout(pad=0.3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out} (dots: keypoints the file lists; crosses: drawn but written as missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
