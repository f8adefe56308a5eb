"""The `fkd-ops demo` main job runs every op and reports finite numbers."""

from __future__ import annotations

import re

from fkd_ops import cli


def test_demo_runs_and_reports_finite_numbers(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower(), out
    rmse = float(re.search(r"masked RMSE of an image-centre guess: ([0-9.]+) px", out).group(1))
    assert 0 < rmse < 96
    assert "restores the keypoints: True" in out
