"""`fkd-ops tune` and `fkd-ops train --strategy spark` on a real Spark
(local[2], 127.0.0.1) with a few hundred faces and tiny networks.

Each Spark command runs in a child process of its own session, bounded in time:
a hang kills the process group (the JVM and Spark's Python workers with it) and
fails the test instead of holding up CI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fkd_ops import cli
from fkd_ops.data.synthetic import write_synthetic_kaggle
from fkd_ops.train import spark
from fkd_ops.train.tune import TUNABLE, option_flag, train_command

pytestmark = pytest.mark.slow

MASTER = "local[2]"


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return write_synthetic_kaggle(tmp_path_factory.mktemp("kaggle"), n_train=200, n_test=8, seed=5).training


def _path_without_this_python() -> str:
    """PATH less this interpreter's folder, as for a user who runs a venv's
    fkd-ops without activating the venv: Spark's workers must still get this
    interpreter, not the first python3 on PATH."""
    own = Path(sys.executable).parent
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d) != own)


def _run(script: str, cwd: Path, timeout: int) -> str:
    """Runs ``script`` in a fresh interpreter (a session of its own) and returns
    its output; a non-zero exit or a hang fails the test."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        start_new_session=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": _path_without_this_python()},
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"still running after {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, out[-5000:]
    return out


def test_tune_ranks_trials_keeps_going_past_a_failure_and_resumes(faces, tmp_path):
    out = tmp_path / "tune"
    # hidden_units=1e9 asks for a 9216 x 1e9 kernel: that trial fails (out of
    # memory), the other one trains.
    argv = [
        "tune", "--model", "hidden", "--data", str(faces), "--epochs", "2", "--batch-size", "32",
        "--grid", "hidden_units=8,1000000000", "--spark-master", MASTER, "--spark-conf", "spark.ui.enabled=false",
        "--out", str(out),
    ]  # fmt: skip
    script = f"""
        import sys
        from fkd_ops import cli
        argv = {argv!r}
        print("EXIT", cli.main(argv))
        print("EXIT", cli.main(argv + ["--resume"]))
    """
    text = _run(script, tmp_path, timeout=480)
    first, second = text.split("EXIT", 1)
    assert "EXIT 1" in text and text.count("EXIT 1") == 2, text[-3000:]  # one trial failed: not a full success

    # The first run: a line per trial, the table, the best trial as a train command.
    assert "[1/2]" in first and "[2/2]" in first
    assert "t001 hidden_units=1000000000: FAILED" in first
    assert "best: t000" in first
    command = next(line.strip() for line in first.splitlines() if line.strip().startswith("fkd-ops train"))
    assert "--hidden-units 8" in command and "--model hidden" in command and "--epochs 2" in command

    state = json.loads((out / "tune.json").read_text())
    done, failed = state["trials"]
    assert (done["status"], failed["status"]) == ("done", "failed")
    assert "ResourceExhaustedError" in failed["error"] or "MemoryError" in failed["error"], failed["error"]
    assert done["metrics"]["validation_rmse_px"] < done["metrics"]["mean_baseline_validation_rmse_px"] * 2
    assert len(done["history"]["val_rmse_px"]) == 2
    assert state["best"]["id"] == "t000" and state["best"]["command"] == command
    folder = out / "trials" / "t000"
    for name in ("config.json", "metrics.json", "history.csv", "predictor.keras", "trial.log"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoint.keras").exists()
    assert json.loads((folder / "config.json").read_text())["out"] == str(folder)
    assert "Traceback" in (out / "trials" / "t001" / "trial.log").read_text()
    assert (out / "tune_curves.png").stat().st_size > 0

    # The resumed run keeps the finished trial and runs only the failed one again.
    assert "resuming" in second and "1 of 2 trials done, 1 to run" in second
    assert "t000 hidden_units=8:" not in second.split("rank")[0]
    again = json.loads((out / "tune.json").read_text())
    assert again["trials"][0] == done


def test_train_on_spark_workers_agree_and_fail_fast_when_the_cluster_is_too_small(faces, tmp_path):
    def argv(out: str, workers: int) -> list[str]:
        return [
            "train", "--model", "hidden", "--data", str(faces), "--epochs", "2", "--batch-size", "16",
            "--strategy", "spark", "--spark-workers", str(workers), "--spark-master", MASTER,
            "--spark-conf", "spark.ui.enabled=false", "--out", out,
        ]  # fmt: skip

    # Three workers on two slots first: Spark's barrier check gives up at once
    # (by default it retries for about ten minutes, past this test's time limit);
    # then a second Spark command in the same process trains.
    script = f"""
        from fkd_ops import cli
        print("EXIT", cli.main({argv("too-many", 3)!r}))
        print("EXIT", cli.main({argv("run", 2)!r}))
    """
    text = _run(script, tmp_path, timeout=420)
    assert "EXIT 1" in text and "EXIT 0" in text, text[-3000:]
    error = [line for line in text.splitlines() if "fkd-ops train: error:" in line]
    assert len(error) == 1 and "3 workers need 3 task slots at once and local[2] has 2" in error[0], text[-3000:]
    assert not (tmp_path / "too-many" / "metrics.json").exists()

    assert "epoch 2/2" in text  # progress, from the chief's history
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["epochs"] == 2
    # The validation RMSE the two workers computed together (squared errors summed
    # across replicas) equals the chief's single-process evaluation of the same weights.
    history = (run / "history.csv").read_text().splitlines()
    header, last = history[0].split(","), history[-1].split(",")
    assert float(last[header.index("val_rmse_px")]) == pytest.approx(metrics["validation_rmse_px"], rel=1e-5)
    assert "NativeCodeLoader" in (run / "spark.log").read_text() or (run / "spark.log").stat().st_size > 0


def test_without_java_or_pyspark_one_line_says_what_to_install(faces, tmp_path, monkeypatch, capsys):
    argv = ["tune", "--model", "linear", "--data", str(faces), "--grid", "l2=0,1e-3", "--out", str(tmp_path / "t")]
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java here
    assert cli.main(argv) == cli.EXIT_FAILURE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Java 17+" in err[0] and "JDK" in err[0], err
    assert not (tmp_path / "t").exists()

    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark now fails
    assert cli.main(argv) == cli.EXIT_FAILURE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and spark.INSTALL_HINT in err[0], err


def test_best_trial_command_trains_the_same_settings(tmp_path):
    # Every option a search can vary, set away from its default, survives the trip
    # through the printed `fkd-ops train` command and train's own parser.
    parser = cli.build_parser()
    varied = {
        "optimizer": "nesterov",
        "learning_rate": 0.003,
        "final_learning_rate": 1e-05,
        "momentum": 0.95,
        "l2": 0.0001,
        "dropout": 0.3,
        "hidden_units": 50,
        "epochs": 7,
        "batch_size": 32,
        "flip_probability": 0.25,
        "normalization": "standardize",
        "early_stopping": 3,
    }
    assert set(varied) == set(TUNABLE)
    args = parser.parse_args(
        ["train", "--model", "hidden", "--seed", "4", "--protocol", "complete", "--out", str(tmp_path)]
        + [x for name, value in varied.items() for x in (option_flag(name), str(value))]
    )
    config = cli._train_config(args, "hidden", tmp_path)
    command = train_command(config).split()
    assert command[:2] == ["fkd-ops", "train"]
    again = cli._train_config(parser.parse_args([*command[1:], "--out", str(tmp_path)]), "hidden", tmp_path)
    assert again == config
