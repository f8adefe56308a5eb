"""Pictures: learning curves and faces with their keypoints, as PNG files."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from fkd_ops.files import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> None:
    plt = _pyplot()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)


def _ticker():
    from matplotlib import ticker

    return ticker


def _label_log_axis_in_pixels(axis) -> None:
    """Tick labels as plain numbers ("4", "20", "0.5") where matplotlib would
    write "4 x 10^0"; it still chooses which ticks get a label."""
    ticker = _ticker()

    class PlainLogFormatter(ticker.LogFormatter):
        def __call__(self, x, pos=None):
            return f"{x:g}" if super().__call__(x, pos) else ""

    axis.set_major_formatter(PlainLogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_learning_curves(
    curves: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | os.PathLike,
    *,
    baseline: float | None = None,
    title: str = "Learning curves",
) -> None:
    """Training and validation RMSE (pixels) per epoch, one line pair per run.

    Args:
      curves: run name -> {"rmse_px": [...], "val_rmse_px": [...]} per epoch.
      baseline: the predict-the-mean validation RMSE, drawn as a dashed line.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, curve) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        for key, style, label in (("rmse_px", "--", "train"), ("val_rmse_px", "-", "validation")):
            values = list(curve.get(key, []))
            if values:
                # Markers, so that a one-epoch run still shows its points.
                ax.plot(range(1, len(values) + 1), values, style, marker=".", color=color, label=f"{name} {label}")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle=":", label=f"predict the mean ({baseline:.2f})")
    ax.set_xlabel("epoch")
    epochs = max((len(c.get("rmse_px", [])) for c in curves.values()), default=1)
    ax.set_xlim(0.5, max(epochs, 1) + 0.5)  # whole epochs, also for a one-epoch run
    ax.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_ylabel("RMSE (pixels)")
    ax.set_yscale("log")
    _label_log_axis_in_pixels(ax.yaxis)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_faces(
    images: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike,
    *,
    truth: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    sizes: Sequence[tuple[int, int]] | None = None,
) -> None:
    """A grid of faces with keypoints drawn on them.

    Args:
      images: [N, 96, 96] (or [N, 96, 96, 1]) pixels, any scale, or a list of
        2-D images of any sizes.
      truth: [N, 30] true keypoints in pixels (green dots); NaN ones are skipped.
      predictions: [N, 30] predicted keypoints in pixels (red crosses).
      sizes: per image, the (width, height) in pixels that its keypoints refer to,
        when the array drawn is a shrunk copy of the image (it is stretched to fit).
    """
    plt = _pyplot()
    n = len(images)
    columns = max(1, min(columns, n))
    rows = max(1, math.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.3 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = np.asarray(images[i])
        if image.ndim == 3:
            image = image[..., 0]
        width, height = sizes[i] if sizes is not None else (image.shape[1], image.shape[0])
        # Pixel column j spans [j, j + 1): the extent puts the image's edges at 0 and
        # width, so keypoints in pixel coordinates are drawn as they are.
        ax.imshow(image, cmap="gray", extent=(0, width, height, 0))
        if truth is not None:
            kp = np.asarray(truth[i], dtype=float).reshape(-1, 2)
            ax.scatter(kp[:, 0], kp[:, 1], s=10, c="lime", marker="o", linewidths=0)
        if predictions is not None:
            kp = np.asarray(predictions[i], dtype=float).reshape(-1, 2)
            ax.scatter(kp[:, 0], kp[:, 1], s=14, c="red", marker="x", linewidths=1)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    legend = []
    if truth is not None:
        legend.append("green: true")
    if predictions is not None:
        legend.append("red: predicted")
    if legend:
        fig.suptitle(", ".join(legend), fontsize=9)
    _save(fig, path)
