"""A run killed (SIGKILL) at the exact instants where it commits its files,
then resumed, ends as one run: every epoch trained once, a history without
repeated rows, a loadable predictor, nothing left behind. Each run is a fresh
process that kills itself at the instant chosen (see kill_points.py)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from kill_points import KILL_HOOK, KILLED

from fkd_ops.data.synthetic import write_synthetic_kaggle

pytestmark = pytest.mark.slow

_DYING_CLI = (
    KILL_HOOK
    + """
import sys
from fkd_ops import cli
sys.exit(cli.main(sys.argv[1:]))
"""
)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    return write_synthetic_kaggle(tmp_path_factory.mktemp("kaggle"), n_train=64, n_test=4, seed=5).training


def _train(argv: list[str], cwd: Path, kill_at: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "FKD_TEST_KILL_AT": kill_at}
    return subprocess.run(
        [sys.executable, "-c", _DYING_CLI, "train", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _killed(argv, cwd, kill_at) -> list[str]:
    result = _train(argv, cwd, kill_at)
    assert result.returncode == KILLED, f"not killed at {kill_at}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result.stdout.splitlines()


def _history_epochs(out: Path) -> list[int]:
    with (out / "history.csv").open(newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _checkpoint_epochs(out: Path) -> int:
    with zipfile.ZipFile(out / "checkpoint.keras") as archive:
        return json.loads(archive.read("fkd_ops_run_state.json"))["epochs_done"]


def test_kills_at_each_commit_then_resume_trains_each_epoch_once(small_csv, tmp_path):
    import keras

    import fkd_ops  # noqa: F401  (registers the layers a saved predictor uses)

    out = tmp_path / "run"
    argv = ["--model", "linear", "--data", str(small_csv), "--epochs", "4", "--batch-size", "16"]
    argv += ["--out", str(out), "--progress", "0", "--early-stopping", "3"]

    # Killed halfway through writing epoch 2's checkpoint: epoch 1's is whole.
    _killed(argv, tmp_path, "checkpoint.keras:2")
    assert _checkpoint_epochs(out) == 1 and _history_epochs(out) == [0]
    assert keras.models.load_model(out / "checkpoint.keras").name == "linear"

    # Resumed, killed after epoch 3's checkpoint, while history.csv was being
    # rewritten: the history on disk lags one epoch behind the checkpoint.
    installs = _killed([*argv, "--resume"], tmp_path, "history.csv:3")
    assert "INSTALL checkpoint.keras 1" not in installs, "epoch 1 trained again"
    assert "INSTALL checkpoint.keras 2" in installs
    assert _checkpoint_epochs(out) == 3 and _history_epochs(out) == [0, 1]

    # Resumed, killed after the last epoch, while the run's results were written.
    _killed([*argv, "--resume"], tmp_path, "predictor.keras")
    assert _checkpoint_epochs(out) == 4 and _history_epochs(out) == [0, 1, 2, 3]
    assert not (out / "metrics.json").exists()

    # Resumed: nothing left to train; the run is finished.
    result = _train([*argv, "--resume"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not [line for line in result.stdout.splitlines() if line.startswith("INSTALL checkpoint.keras")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and _history_epochs(out) == [0, 1, 2, 3]
    assert not (out / "checkpoint.keras").exists()
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
    predictor = keras.models.load_model(out / "predictor.keras")
    assert predictor.output.shape == (None, 30)
