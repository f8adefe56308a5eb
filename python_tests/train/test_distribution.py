"""tf.distribute strategies: mirrored over two logical CPU devices gives the same
validation RMSE as one device; two worker processes on 127.0.0.1 train together,
agree, and resume together from the chief's checkpoint."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kill_points import KILL_HOOK, KILLED

pytestmark = pytest.mark.slow


def _run(
    *pieces: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Runs the script made of ``pieces`` (each dedented) in a fresh interpreter,
    outside the source tree so the installed fkd_ops is the one imported."""
    script = "\n".join(textwrap.dedent(p) for p in pieces)
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )


def _result(proc: subprocess.Popen, timeout: int = 300) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, out[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


_DATA = """
    import numpy as np
    from fkd_ops.data.kaggle_files import TrainingSet
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (96, 96, 96), dtype=np.uint8)
    keypoints = rng.uniform(10, 86, (96, 30)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    data = TrainingSet(keypoints=keypoints, images=images)
"""


def test_mirrored_on_two_cpu_devices_matches_one_device(tmp_path: Path):
    script = (
        """
        import json, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import fkd_ops
        from fkd_ops.data.pipeline import make_dataset
        from fkd_ops.train.training import make_strategy
    """,
        _DATA,
        """
        reference = fkd_ops.build_network("cnn", seed=3)
        weights = reference.get_weights()
        val = make_dataset(images, keypoints, batch_size=32, training=False)
        one = reference.evaluate(val, return_dict=True, verbose=0)["rmse_px"]
        strategy = make_strategy("mirrored")
        with strategy.scope():
            mirrored = fkd_ops.build_network("cnn", seed=4)
            mirrored.set_weights(weights)
        two = mirrored.evaluate(val, return_dict=True, verbose=0)["rmse_px"]
        # The exact metric sums squared errors over the whole set: same number.
        want = 48 * float(fkd_ops.masked_rmse(reference.predict(val, verbose=0), (keypoints - 48) / 48).loss)
        history = mirrored.fit(make_dataset(images, keypoints, batch_size=32, training=True), epochs=2, verbose=0)
        # And a whole run under the strategy: fit with the run's callbacks (checkpoints).
        from pathlib import Path
        from fkd_ops.train.training import TrainConfig, train
        run = train(TrainConfig(network="linear", out=Path("run"), epochs=1, batch_size=32, strategy="mirrored",
                                verbose=0), data=data)
        print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "one": one, "two": two,
                                      "want": want, "losses": history.history["loss"],
                                      "run_replicas": run.metrics["replicas"], "run_epochs": run.metrics["epochs"]}))
    """,
    )
    r = _result(_run(*script, cwd=tmp_path))
    assert r["replicas"] == 2
    assert r["two"] == pytest.approx(r["one"], rel=1e-5)
    assert r["one"] == pytest.approx(r["want"], rel=1e-5)
    assert all(loss == loss for loss in r["losses"]) and r["losses"][-1] < r["losses"][0]
    assert r["run_replicas"] == 2 and r["run_epochs"] == 1
    assert (tmp_path / "run" / "predictor.keras").is_file()


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _two_workers(out: Path, epochs: int, *, resume: bool = False, kill_chief_at: str = "") -> list[subprocess.Popen]:
    """Starts the two workers of one multi-worker run on 127.0.0.1."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    script = (
        KILL_HOOK,
        """
        import json, sys
        from pathlib import Path
        from fkd_ops.train.training import TrainConfig, train
    """,
        _DATA,
        """
        config = TrainConfig(network="hidden", out=Path(sys.argv[1]), epochs=int(sys.argv[2]), batch_size=16,
                             strategy="multiworker", early_stopping=5, verbose=0)
        result = train(config, data=data, resume=sys.argv[3] == "resume")
        print("RESULT " + json.dumps({"replicas": result.metrics["replicas"],
                                      "val": result.metrics["validation_rmse_px"],
                                      "epochs": result.metrics["epochs"]}))
    """,
    )
    return [
        _run(
            *script,
            args=(str(out), str(epochs), "resume" if resume else "new"),
            cwd=out.parent,
            env={
                "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                "FKD_TEST_KILL_AT": kill_chief_at if index == 0 else "",
            },
        )
        for index in range(2)
    ]


def test_two_workers_train_together_agree_and_resume(tmp_path: Path):
    out = tmp_path / "run"
    # The chief is killed after the run's one epoch, as it writes the results.
    chief, other = _two_workers(out, epochs=1, kill_chief_at="predictor.keras")
    chief.communicate(timeout=300)
    assert chief.returncode == KILLED
    assert _result(other)["epochs"] == 1
    assert not (out / "metrics.json").exists()

    # Resumed with one epoch more: every worker starts from the chief's checkpoint.
    chief, other = (_result(p) for p in _two_workers(out, epochs=2, resume=True))
    assert chief["replicas"] == other["replicas"] == 2
    # Same data, same steps, weights kept in sync by all-reduce: the same model.
    assert chief["val"] == pytest.approx(other["val"], rel=1e-6)
    assert chief["epochs"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["validation_rmse_px"] == pytest.approx(chief["val"], rel=1e-6)
    with (out / "history.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    # The columns fit writes, each epoch once.
    assert rows[0] == ["epoch", "loss", "rmse_px", "val_loss", "val_rmse_px"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1]
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".keras") == ["predictor.keras"]
    assert not any(p.name.startswith(".") for p in out.iterdir())
