"""The three example programs in models/ run on the built-in data and report a
validation RMSE in pixels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize(
    "program, args",
    [
        ("linear_model.py", ["--epochs", "2", "--rows", "400"]),
        ("hidden_layer_model.py", ["--epochs", "2", "--rows", "400"]),
        ("cnn_model.py", ["--epochs", "1", "--rows", "300"]),
    ],
)
def test_program_runs_and_reports_rmse(program, args, tmp_path):
    # Run from a scratch folder, as a user would, so the installed fkd_ops is used.
    result = subprocess.run(
        [sys.executable, str(MODELS / program), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    found = re.search(r"validation RMSE: ([0-9.]+) px \(predicting the mean face: ([0-9.]+) px\)", result.stdout)
    assert found, result.stdout[-2000:]
    rmse, mean = map(float, found.groups())
    assert 0 < rmse < 96 and 0 < mean < 96
