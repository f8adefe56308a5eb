"""Fits the face shape model that the synthetic generator draws from, and writes
it into the package as fkd_ops/_face_shape_model.py.

From the real labels (training_keypoints.csv: Kaggle's 30 keypoint columns, 7049
rows) and the real lookup table (IdLookupTable.csv):

- a mean shape and the main modes of intrinsic variation (PCA of the complete
  rows after removing each face's similarity pose: generalised Procrustes);
- the pose distribution (log scale, rotation, centre x, y) of complete rows and
  of the partial rows separately, as Gaussians, fitted to each row's present
  points;
- which keypoints are present in each training row (the observed patterns and
  their counts) and which features the lookup table asks for per test image.

Usage: python benchmarks/fit_shape_model.py [--data ../shared/data/kaggle] [--out fkd_ops/_face_shape_model.py]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fkd_ops.keypoints import KEYPOINT_COLUMNS, KEYPOINT_NAMES, NUM_KEYPOINTS  # noqa: E402

VARIANCE_KEPT = 0.97
ITERATIONS = 10


def fit_poses(points: np.ndarray, present: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Least-squares similarity (complex a = s e^{i theta}, translation t) taking
    the mean shape to each row's present points. Returns complex [N, 2] (a, t)."""
    z = points[..., 0] + 1j * points[..., 1]
    m = mean[:, 0] + 1j * mean[:, 1]
    out = np.empty((len(points), 2), complex)
    for i in range(len(points)):
        k = present[i]
        design = np.stack([m[k], np.ones(k.sum())], axis=1)
        out[i] = np.linalg.lstsq(design, z[i, k], rcond=None)[0]
    return out


def to_canonical(points: np.ndarray, poses: np.ndarray) -> np.ndarray:
    z = points[..., 0] + 1j * points[..., 1]
    c = (z - poses[:, 1:2]) / poses[:, 0:1]
    return np.stack([c.real, c.imag], axis=-1)


def normalise_mean(mean: np.ndarray, size: float) -> np.ndarray:
    """Centroid at 0, the eye axis horizontal (left eye, on the image's right, at +x),
    RMS radius `size`."""
    mean = mean - mean.mean(axis=0)
    eyes = mean[KEYPOINT_NAMES.index("left_eye_center")] - mean[KEYPOINT_NAMES.index("right_eye_center")]
    angle = np.arctan2(eyes[1], eyes[0])
    c, s = np.cos(-angle), np.sin(-angle)
    mean = mean @ np.array([[c, s], [-s, c]])
    return mean * size / np.sqrt((mean**2).sum(axis=1).mean())


def mask_of(present_points: np.ndarray) -> int:
    return int(sum(1 << k for k in np.flatnonzero(present_points)))


def fmt(values, digits: int = 6) -> str:
    return (
        "("
        + ", ".join(f"{float(v):.{digits}g}" for v in np.ravel(values))
        + ("," if np.size(values) == 1 else "")
        + ")"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "kaggle")
    parser.add_argument("--out", type=Path, default=ROOT / "fkd_ops" / "_face_shape_model.py")
    args = parser.parse_args()

    labels = pd.read_csv(args.data / "training_keypoints.csv")
    if tuple(labels.columns) != KEYPOINT_COLUMNS:
        raise SystemExit("training_keypoints.csv does not have Kaggle's 30 keypoint columns")
    values = labels.to_numpy(np.float64).reshape(-1, NUM_KEYPOINTS, 2)
    present = ~np.isnan(values).any(axis=2)
    if (np.isnan(values).any(axis=2) != np.isnan(values).all(axis=2)).any():
        raise SystemExit("a row has x without y (or y without x)")
    complete = present.all(axis=1)
    print(f"{len(values)} rows, {complete.sum()} complete")

    # Generalised Procrustes on the complete rows.
    full = values[complete]
    all_present = np.ones(full.shape[:2], bool)
    size = np.sqrt(((full - full.mean(axis=1, keepdims=True)) ** 2).sum(axis=2).mean())
    mean = normalise_mean(full.mean(axis=0), size)
    for _ in range(ITERATIONS):
        poses = fit_poses(full, all_present, mean)
        canonical = to_canonical(full, poses)
        new_mean = normalise_mean(canonical.mean(axis=0), size)
        change = np.abs(new_mean - mean).max()
        mean = new_mean
        if change < 1e-9:
            break
    poses = fit_poses(full, all_present, mean)
    residual = (to_canonical(full, poses) - mean).reshape(len(full), -1)
    residual -= residual.mean(axis=0)
    _, singular, vt = np.linalg.svd(residual, full_matrices=False)
    variance = singular**2 / (len(full) - 1)
    kept = int(np.searchsorted(np.cumsum(variance) / variance.sum(), VARIANCE_KEPT) + 1)
    modes, stddevs = vt[:kept], np.sqrt(variance[:kept])
    print(
        f"mean RMS radius {size:.3f} px; {kept} modes keep {VARIANCE_KEPT:.0%} of the intrinsic "
        f"variance; mode stddevs (px, unit-norm modes): {np.round(stddevs, 2)}"
    )

    # Poses of every row from its present points, complete and partial rows apart.
    all_poses = fit_poses(values, present, mean)
    a, t = all_poses[:, 0], all_poses[:, 1]
    params = np.stack([np.log(np.abs(a)), np.angle(a), t.real, t.imag], axis=1)
    pose_stats = {}
    for group, rows in (("complete", complete), ("partial", ~complete)):
        p = params[rows]
        pose_stats[group] = (p.mean(axis=0), np.cov(p, rowvar=False))
        sd = np.sqrt(np.diag(pose_stats[group][1]))
        print(
            f"pose of {group} rows ({rows.sum()}): mean {np.round(p.mean(axis=0), 3)}, "
            f"stddev {np.round(sd, 3)} (log scale, rotation rad, x px, y px)"
        )

    training_patterns = collections.Counter(mask_of(row) for row in present)

    lookup = pd.read_csv(args.data / "IdLookupTable.csv")
    point_of = {c: KEYPOINT_COLUMNS.index(c) // 2 for c in KEYPOINT_COLUMNS}
    per_image: dict[int, set[int]] = collections.defaultdict(set)
    for image_id, feature in zip(lookup["ImageId"], lookup["FeatureName"]):
        per_image[int(image_id)].add(point_of[feature])
    test_patterns = collections.Counter(
        mask_of(np.isin(np.arange(NUM_KEYPOINTS), sorted(points))) for points in per_image.values()
    )
    # Lookup rows ask for x and y of a point together; check so the masks are exact.
    features = collections.Counter(zip(lookup["ImageId"], (point_of[f] for f in lookup["FeatureName"])))
    if set(features.values()) != {2}:
        raise SystemExit("the lookup table asks for x without y (or the reverse) somewhere")

    lines = [
        '"""The face shape model behind fkd_ops.data.synthetic, fitted to the real Kaggle labels.',
        "",
        "Generated by benchmarks/fit_shape_model.py from training_keypoints.csv (the 30 keypoint",
        f"columns of Kaggle's training.csv: {len(values)} rows, {complete.sum()} complete) and",
        "IdLookupTable.csv. Do not edit; rerun the script.",
        "",
        "Coordinates are pixels. A face's points are",
        "    pose(MEAN_SHAPE + sum_k b_k MODES[k]),  b_k ~ N(0, MODE_STDDEVS[k]^2),",
        "where pose is the similarity x -> exp(log_scale) R(rotation) x + (x0, y0) drawn from",
        "POSE_MEAN / POSE_COVARIANCE of the row's group (complete or partial rows).",
        '"""',
        "",
        "# fmt: off",
        f"MEAN_SHAPE = {fmt(mean.ravel())}",
        '"""[15 * 2], x y interleaved, centroid at 0, eye axis horizontal."""',
        "",
        "MODES = (",
        *[f"    {fmt(m)}," for m in modes],
        ")",
        f'"""{kept} unit-norm modes of intrinsic shape variation '
        f'(PCA after Procrustes, {VARIANCE_KEPT:.0%} of variance)."""',
        "",
        f"MODE_STDDEVS = {fmt(stddevs)}",
        "",
        'POSE_PARAMETERS = ("log_scale", "rotation", "x0", "y0")',
        "",
        "POSE_MEAN = {",
        *[f'    "{g}": {fmt(m)},' for g, (m, _) in pose_stats.items()],
        "}",
        "",
        "POSE_COVARIANCE = {",
        *[f'    "{g}": {fmt(c)},' for g, (_, c) in pose_stats.items()],
        "}",
        '"""4 x 4, row-major."""',
        "",
        "TRAINING_PRESENCE = (",
        *[f"    ({m}, {c})," for m, c in sorted(training_patterns.items(), key=lambda kv: (-kv[1], kv[0]))],
        ")",
        '"""(bitmask of the points present in a training row, bit k = point k; rows with it)."""',
        "",
        "TEST_FEATURE_PRESENCE = (",
        *[f"    ({m}, {c})," for m, c in sorted(test_patterns.items(), key=lambda kv: (-kv[1], kv[0]))],
        ")",
        '"""(bitmask of the points the lookup table asks for per test image; images with it)."""',
        "# fmt: on",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
