"""The fkd-ops command end to end on a small synthetic set: train, resume,
evaluate, predict (the built-in test set's submission), show, and one-line
errors for bad arguments and unreadable files."""

from __future__ import annotations

import csv
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fkd_ops import cli
from fkd_ops.data import builtin as builtin_module
from fkd_ops.data.kaggle_files import read_lookup_table, read_training
from fkd_ops.data.synthetic import write_synthetic_kaggle
from fkd_ops.keypoints import KEYPOINT_COLUMNS
from fkd_ops.train.evaluation import predict_pixels

pytestmark = pytest.mark.slow

OLD_RUN = Path(__file__).resolve().parent.parent / "fixtures" / "run_saved_by_fkd_ops_0.1.0"


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return write_synthetic_kaggle(tmp_path_factory.mktemp("kaggle"), n_train=160, n_test=24, seed=3)


@pytest.fixture
def small_builtin(monkeypatch, tmp_path):
    """The built-in data path, shrunk to a few faces in a private cache."""
    monkeypatch.setattr(
        builtin_module,
        "builtin_data",
        functools.partial(
            builtin_module.builtin_data, n_train=120, n_test=16, cache_dir=tmp_path / "cache", show_progress=False
        ),
    )
    return builtin_module.builtin_data


def _run_ok(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_train_writes_a_complete_run_folder(small_set, tmp_path, capsys):
    out = tmp_path / "run"
    text = _run_ok(
        [
            "train",
            "--model",
            "hidden",
            "--data",
            str(small_set.training),
            "--epochs",
            "2",
            "--out",
            str(out),
            "--progress",
            "0",
            "--early-stopping",
            "5",
        ],
        capsys,
    )
    assert "val RMSE px" in text and "hidden" in text
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "predictor.keras",
        "learning_curve.png",
        "validation_faces.png",
    ):
        assert (out / name).is_file(), name
    # The predictor is the run's one model file: the checkpoint (weights and
    # optimizer state, for --resume) goes once the run has finished.
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".keras") == ["predictor.keras"]
    assert any((out / "logs").rglob("*tfevents*")), "no TensorBoard events"
    assert (out / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["train_rows"] + metrics["validation_rows"] == 160
    assert len(metrics["validation_per_keypoint_rmse_px"]) == 15
    # The network starts at the predict-the-mean baseline (output bias = mean
    # training target); two epochs on 128 faces barely move it (measured 0.98-1.00
    # of the baseline over four synthetic sets), and must not make it worse.
    # A network that diverged, or a predictor that normalizes otherwise than
    # training did, lands pixels away.
    baseline = metrics["mean_baseline_validation_rmse_px"]
    assert 3 < baseline < 5
    assert metrics["validation_rmse_px"] < 1.02 * baseline
    assert metrics["wall_time_s"] > 0

    # evaluate: the same validation RMSE as the run measured.
    text = _run_ok(["evaluate", str(out), "--json", str(tmp_path / "eval.json")], capsys)
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["rmse_px"] == pytest.approx(metrics["validation_rmse_px"], rel=1e-5)
    assert "left_eye_center" in text

    # show: faces with the run's predictions.
    _run_ok(
        [
            "show",
            "--data",
            str(small_set.training),
            "--run",
            str(out),
            "--count",
            "6",
            "--out",
            str(tmp_path / "faces.png"),
        ],
        capsys,
    )
    assert (tmp_path / "faces.png").read_bytes()[:4] == b"\x89PNG"

    # A finished run is not silently overwritten or "resumed" from scratch.
    assert cli.main(["train", "--model", "hidden", "--data", str(small_set.training), "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert (
        cli.main(["train", "--model", "hidden", "--data", str(small_set.training), "--out", str(out), "--resume"]) == 1
    )
    assert "has finished" in capsys.readouterr().err


def test_submission_for_the_builtin_test_set(small_builtin, tmp_path, capsys):
    run = tmp_path / "run"
    _run_ok(["train", "--model", "hidden", "--epochs", "3", "--out", str(run), "--progress", "0"], capsys)
    submission = tmp_path / "submission.csv"
    text = _run_ok(["predict", str(run), "--out", str(submission)], capsys)
    files = small_builtin()
    lookup = read_lookup_table(files.lookup_table)
    written = pd.read_csv(submission)
    assert list(written.columns) == ["RowId", "Location"]
    assert written["RowId"].tolist() == lookup["RowId"].tolist()
    assert written["Location"].between(0, 96).all()
    assert f"wrote {len(lookup)} rows" in text
    # Scored against the synthetic test set's true keypoints, the submission is as
    # good as the run's network: about the predict-the-mean baseline, which it
    # starts from (a few epochs on 96 faces barely move it). Rows mixed up between
    # faces or features would be pixels off.
    truth = pd.read_csv(files.test_keypoints).set_index("ImageId")
    want = np.array([truth.loc[i, f] for i, f in zip(lookup["ImageId"], lookup["FeatureName"])])
    rmse = np.sqrt(np.nanmean((written["Location"].to_numpy() - want) ** 2))
    training = read_training(files.training).keypoints
    mean_face = pd.Series(np.nanmean(training, axis=0), index=KEYPOINT_COLUMNS)
    baseline = np.sqrt(np.nanmean((mean_face[lookup["FeatureName"]].to_numpy() - want) ** 2))
    assert rmse < 1.05 * baseline, (rmse, baseline)


def test_resume_continues_an_interrupted_run(small_set, tmp_path):
    out = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "fkd_ops.cli",
        "train",
        "--model",
        "linear",
        "--data",
        str(small_set.training),
        "--epochs",
        "40",
        "--out",
        str(out),
        "--progress",
        "0",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    history = out / "history.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(history.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted:\n" + proc.communicate()[0][-2000:]
    proc.send_signal(signal.SIGKILL)  # as hard as a crash or a lost machine
    proc.wait()
    done_before = len(history.read_text().splitlines()) - 1
    assert not (out / "metrics.json").exists()

    result = subprocess.run(argv + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 40
    with history.open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    # The resumed run starts after the last complete epoch: each epoch once.
    assert epochs == list(range(40))
    assert done_before >= 2


def _exit_code(argv) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--epochs", "0"], ["--epochs", "positive integer"]),
        (["train", "--model", "resnet"], ["--model", "invalid choice"]),
        (["train", "--data", "no/such/training.csv"], ["no such file", "no/such/training.csv"]),
        (["train", "--resume"], ["--resume needs --out"]),
        (["predict", "no/such/run"], ["no trained model", "no/such/run"]),
        (["frobnicate"], ["invalid choice"]),
    ],
)
def test_bad_arguments_end_with_one_line(argv, words, capsys):
    assert _exit_code(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in err


def test_malformed_file_is_one_line_naming_file_and_line(tmp_path, small_set):
    bad = tmp_path / "training.csv"
    lines = small_set.training.read_bytes().split(b"\r\n")
    lines[5] = lines[5].replace(b",", b";", 1)
    bad.write_bytes(b"\r\n".join(lines))
    result = subprocess.run(
        [sys.executable, "-m", "fkd_ops.cli", "train", "--data", str(bad), "--out", str(tmp_path / "r")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 1
    err = [line for line in result.stderr.splitlines() if line.startswith("fkd-ops")]
    assert len(err) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert str(bad) in err[0] and "line 6" in err[0]


def test_a_run_that_fails_its_checks_writes_nothing(small_set, tmp_path, capsys):
    header, first_face = small_set.training.read_bytes().split(b"\r\n")[:2]
    one_face = tmp_path / "one_face.csv"
    one_face.write_bytes(header + b"\r\n" + first_face + b"\r\n")
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "linear", "--data", str(one_face), "--out", str(out)]) == 1
    assert "validation rows; both must be non-empty" in capsys.readouterr().err
    assert not out.exists()  # so the same --out takes the next attempt


def test_a_run_folder_written_by_fkd_ops_0_1_0_still_serves(small_set, tmp_path, capsys):
    # Its predictor holds the network and its optimizer state; ours no longer
    # writes a model.keras beside it.
    model, config = cli._load_run(OLD_RUN)
    expected = np.load(OLD_RUN / "expected.npz")
    predicted = predict_pixels(model, expected["images"], normalization=config["normalization"])
    np.testing.assert_allclose(predicted, expected["predictions"], rtol=1e-5, atol=1e-4)
    data = ["--data", str(small_set.training)]
    assert "RMSE" in _run_ok(["evaluate", str(OLD_RUN), *data], capsys)
    _run_ok(["show", *data, "--run", str(OLD_RUN), "--count", "2", "--out", str(tmp_path / "faces.png")], capsys)
    files = ["--test", str(small_set.test), "--lookup", str(small_set.lookup_table)]
    text = _run_ok(["predict", str(OLD_RUN), *files, "--out", str(tmp_path / "s.csv")], capsys)
    assert "wrote" in text and (tmp_path / "s.csv").is_file()


def test_resume_of_model_all_keeps_the_finished_networks(small_set, tmp_path, capsys):
    out = tmp_path / "all"
    common = ["--data", str(small_set.training), "--epochs", "1", "--out", str(out), "--progress", "0"]
    # As a kill during the CNN's first epoch leaves it: linear and hidden finished.
    for name in ("linear", "hidden"):
        _run_ok(["train", "--model", name, *common[:-4], "--out", str(out / name), "--progress", "0"], capsys)
    finished = {name: json.loads((out / name / "metrics.json").read_text()) for name in ("linear", "hidden")}
    (out / "cnn").mkdir()

    text = _run_ok(["train", "--model", "all", *common, "--resume"], capsys)
    assert "linear had finished" in text and "hidden had finished" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [m["network"] for m in summary] == ["linear", "hidden", "cnn"]
    assert summary[:2] == [finished["linear"], finished["hidden"]]  # kept, not trained again
    assert summary[2]["epochs"] == 1 and (out / "cnn" / "predictor.keras").is_file()
