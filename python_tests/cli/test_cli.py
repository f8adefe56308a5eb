"""`fkd-ops demo` runs every op and reports the right numbers; the command keeps
TensorFlow's start-up lines off the terminal unless --verbose asks."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np

from fkd_ops import cli

# What TensorFlow's C++ side prints on its own: absl's pre-init notice and
# glog-style lines ("I0000 00:00:1796061889.655616 10068 cudart_stub.cc:31] ...").
TF_LOG_LINE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ )")


def test_demo_reports_the_centre_guess_rmse_of_its_faces(capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    rmse = float(re.search(r"masked RMSE of an image-centre guess: ([0-9.]+) px", out).group(1))
    # The demo's keypoints, drawn as it draws them. A flip moves x to 96 - x and
    # swaps slots, which keeps every distance to the centre: the RMSE of guessing
    # the centre is the same before and after the flip.
    rng = np.random.default_rng(0)
    rng.integers(0, 256, (8, 96, 96), dtype=np.uint8)
    keypoints = rng.uniform(0, 96, (8, 30)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    want = np.sqrt(np.nanmean((keypoints.astype(np.float64) - 48.0) ** 2))
    assert rmse == round(want, 3)
    assert f"over {int(np.sum(~np.isnan(keypoints)))} present coordinates" in out
    assert "restores the keypoints: True" in out


def _demo_stderr(*flags: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the CLI's own defaults
    done = subprocess.run(
        [sys.executable, "-m", "fkd_ops.cli", "demo", *flags],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.sep,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restores the keypoints: True" in done.stdout
    return done.stderr


def test_tensorflow_start_up_lines_show_only_with_verbose():
    quiet = [line for line in _demo_stderr().splitlines() if TF_LOG_LINE.match(line)]
    assert quiet == []
    loud = [line for line in _demo_stderr("--verbose").splitlines() if TF_LOG_LINE.match(line)]
    assert loud, "with --verbose, TensorFlow's own lines should reach stderr"
