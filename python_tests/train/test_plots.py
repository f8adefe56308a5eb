"""Pictures of a run: the learning curves' log axis reads in plain pixels."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fkd_ops.train.plots import _label_log_axis_in_pixels, plot_learning_curves  # noqa: E402


def test_log_axis_labels_are_plain_pixel_values(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [4.6, 4.2, 3.9])  # a narrow range: matplotlib would write "4 x 10^0"
    ax.set_yscale("log")
    _label_log_axis_in_pixels(ax.yaxis)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [
        t.get_text()
        for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)
        if low <= t.get_position()[1] <= high
    ]
    plt.close(fig)
    assert "4" in shown and "4.5" in shown, shown
    assert all(re.fullmatch(r"[0-9.]*", label) for label in shown), shown

    curves = {"cnn": {"rmse_px": [4.6, 4.1], "val_rmse_px": [4.4, 4.0]}}
    plot_learning_curves(curves, tmp_path / "curve.png", baseline=4.5)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
