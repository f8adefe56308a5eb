"""Independent numpy computations of what each op must return.

Written from the contract in DESIGN.md, not from the package: no fkd_ops code is
used here (only the keypoint layout's default pairs, a fact with one home, which
python_tests/ops/test_flip.py checks against Kaggle's column names), so an error
shared by the C++ kernels and the TF twins still shows. Everything is computed in
float64 (or exact Python integers).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fkd_ops.keypoints import FLIP_PAIRS

# ------------------------------------------------------------------ masked RMSE


def masked_rmse(predictions, targets, squared: bool = False) -> tuple[float, float, float]:
    """(loss, sum_sq, count) in float64."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    present = ~np.isnan(t)
    d = p[present] - t[present]
    sum_sq = float(np.sum(d * d))
    count = float(np.count_nonzero(present))
    if count == 0:
        return 0.0, sum_sq, 0.0
    mse = sum_sq / count
    return (mse if squared else float(np.sqrt(mse))), sum_sq, count


def masked_rmse_grad(predictions, targets, squared: bool = False) -> np.ndarray:
    """d loss / d predictions (d / d targets is its negative)."""
    p = np.asarray(predictions, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    present = ~np.isnan(t)
    loss, sum_sq, count = masked_rmse(p, t, squared)
    g = np.zeros_like(p)
    if count == 0 or sum_sq == 0:
        return g
    # d(sum_sq)/dp = 2 (p - t); squared: loss = sum_sq / n; else loss = sqrt(sum_sq / n).
    dloss_dsum = 1.0 / count if squared else 1.0 / (2.0 * count * loss)
    g[present] = 2.0 * dloss_dsum * (p[present] - t[present])
    return g


# ------------------------------------------------------------------ normalize


def normalize(
    images, mode: str = "scale", scale: float = 1.0 / 255.0, mean: float = 0.0, stddev: float = 1.0
) -> np.ndarray:
    """Float64 normalization of [B, H, W] or [B, H, W, C]. The scalars go through
    float32 first because the op carries them as float32 attributes."""
    x = np.asarray(images).astype(np.float64)
    scale, mean, stddev = (float(np.float32(v)) for v in (scale, mean, stddev))
    if mode == "scale":
        return x * scale
    if mode == "affine":
        return (x - mean) / stddev
    assert mode == "standardize", mode
    axes = tuple(range(1, x.ndim))
    n = int(np.prod(x.shape[1:]))
    if x.shape[0] == 0 or n == 0:
        return x.copy()
    m = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(((x - m) ** 2).mean(axis=axes, keepdims=True))
    return (x - m) / np.maximum(std, 1.0 / np.sqrt(n))


def standardize_grad(images, upstream) -> np.ndarray:
    """Vector-Jacobian product of per-image standardization, derived by hand:
    y = (x - m) / s, s = max(std, 1/sqrt(N));  dx = (g - mean(g) - y mean(g y)) / s
    while std > 1/sqrt(N), else (g - mean(g)) / s."""
    x = np.asarray(images, dtype=np.float64)
    g = np.asarray(upstream, dtype=np.float64)
    out = np.zeros_like(x)
    for b in range(x.shape[0]):
        xb, gb = x[b].ravel(), g[b].ravel()
        n = xb.size
        m = xb.mean()
        std = np.sqrt(((xb - m) ** 2).mean())
        s = max(std, 1.0 / np.sqrt(n))
        y = (xb - m) / s
        dx = gb - gb.mean()
        if std >= 1.0 / np.sqrt(n):
            dx = dx - y * np.mean(gb * y)
        out[b] = (dx / s).reshape(x[b].shape)
    return out


# ------------------------------------------------------------------ flip


def flip(
    images, keypoints, decisions, pairs: Sequence[Sequence[int]] = FLIP_PAIRS, pixel_centers: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror flipped images (axis 2) and remap their keypoints: x -> W - x (or
    W - 1 - x), y kept, each pair's two points exchanged. NaN stays NaN."""
    images = np.asarray(images)
    kp = np.asarray(keypoints)
    out_images = images.copy()
    out_kp = kp.copy()
    width = images.shape[2] - (1 if pixel_centers else 0)
    for b, f in enumerate(np.asarray(decisions, dtype=bool)):
        if not f:
            continue
        out_images[b] = images[b][:, ::-1, ...]
        row = kp[b].astype(np.float64)
        xs, ys = row[0::2].copy(), row[1::2].copy()
        xs = width - xs
        for left, right in pairs:
            xs[[left, right]] = xs[[right, left]]
            ys[[left, right]] = ys[[right, left]]
        new = np.empty_like(row)
        new[0::2], new[1::2] = xs, ys
        out_kp[b] = new.astype(kp.dtype)
    return out_images, out_kp


_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix64(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & _MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def flip_decisions(seed: Sequence[int], batch: int, probability: float = 0.5) -> np.ndarray:
    """The documented stateless rule in exact Python integers: key =
    mix(s0 ^ mix(s1 + golden)); sample i flips when
    (mix(key + (i + 1) golden) >> 11) * 2^-53 < probability (as float32)."""
    s0, s1 = (int(s) & _MASK64 for s in seed)
    key = _mix64(s0 ^ _mix64((s1 + _GOLDEN) & _MASK64))
    p = float(np.float32(probability))
    out = np.zeros(batch, dtype=bool)
    for i in range(batch):
        bits = _mix64((key + (i + 1) * _GOLDEN) & _MASK64)
        out[i] = (bits >> 11) * 2.0**-53 < p
    return out
