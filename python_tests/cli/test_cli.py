"""The `fkd-ops demo` main job runs every op and reports the right numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fkd_ops import cli


def test_demo_runs_and_reports_the_masked_rmse_of_its_batch(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower(), out
    rmse = float(re.search(r"masked RMSE of an image-centre guess: ([0-9.]+) px", out).group(1))
    # The demo's batch, drawn the same way: a guess at the centre is as far from a
    # point as from its mirror image, so flipping does not change the RMSE over
    # the present coordinates.
    rng = np.random.default_rng(0)
    rng.integers(0, 256, (8, 96, 96), dtype=np.uint8)
    keypoints = rng.uniform(0, 96, (8, 30))
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    assert rmse == pytest.approx(np.sqrt(np.nanmean((keypoints - 48.0) ** 2)), abs=1e-3)
    assert "restores the keypoints: True" in out
