"""Hyperparameter search on Spark: every configuration of one network is one
Spark task that trains on the same split and reports its validation RMSE.

The driver (this module, no TensorFlow) plans the trials, broadcasts the
training set once, runs each trial as its own Spark job (so trials finish, are
reported and are saved one by one, as many at a time as Spark has task slots),
gathers every trial's run folder under the tune folder, and keeps ``tune.json``
up to date after each trial, so an interrupted tune resumes without rerunning
the trials that finished. A trial that fails is recorded with its error; the
others go on.

The tune folder::

    tune.json          the search, every trial's options, status, metrics, error,
                       wall time and learning curve, and the best trial's train command
    tune_curves.png    the learning curves of the best trials
    spark.log          Spark's log
    trials/t000/       each trial's run folder (config.json, metrics.json,
                       history.csv, logs/, predictor.keras, the pictures) and
                       trial.log, what the trial printed
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import io
import itertools
import json
import math
import os
import shlex
import shutil
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fkd_ops.files import write_json
from fkd_ops.keras.options import NetworkOptions
from fkd_ops.train.config import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    TrainConfig,
    TrainingError,
)
from fkd_ops.train.spark import (
    DEFAULT_MASTER,
    SPARK_LOG,
    SparkJobError,
    ensure_spark,
    error_line,
    is_running,
    job_error_message,
    limit_tensorflow_threads,
    megabytes,
    output_to,
    slots,
    spark_context,
    task_cpus,
)

if TYPE_CHECKING:
    from fkd_ops.data.kaggle_files import TrainingSet

TUNE_FILE = "tune.json"
TRIALS_DIR = "trials"
TRIAL_LOG = "trial.log"
CURVES_FILE = "tune_curves.png"

TUNABLE: dict[str, type] = {
    # NetworkOptions
    "optimizer": str,
    "learning_rate": float,
    "final_learning_rate": float,
    "momentum": float,
    "l2": float,
    "dropout": float,
    "hidden_units": int,
    # TrainConfig
    "epochs": int,
    "batch_size": int,
    "flip_probability": float,
    "normalization": str,
    "early_stopping": int,
}
"""The options a search can vary (``train``'s option of the same name, dashes for
underscores), with their types."""

NOT_TUNABLE: dict[str, str] = {
    "seed": "it also picks the validation rows, which every trial must share: --seed sets it for the whole tune",
    "protocol": "it picks the rows, which every trial must share: --protocol sets it for the whole tune",
    "data": "every trial trains on the same data: --data sets it",
    "data_seed": "every trial trains on the same data: --data-seed sets it",
}

_NETWORK_FIELDS = frozenset(f.name for f in dataclasses.fields(NetworkOptions))
_OPTIONAL = frozenset({"learning_rate", "final_learning_rate", "early_stopping"})
"""Options whose value may be ``none`` (the default: per-network rate, no decay, no early stop)."""

_OUTCOME = ("status", "metrics", "error", "wall_time_s", "history", "host", "peak_memory_mb")
"""What a trial's Spark task reports (besides its folder)."""

_KEPT_FROM_TRIALS = (CHECKPOINT_FILE,)
"""Removed from a trial's folder: the resume state a failed trial leaves (a
finished run has removed it itself; a trial interrupted midway starts again)."""

CHUNK = 8 << 20
"""Largest piece of a trial's folder shipped to the driver (bytes)."""


def option_flag(name: str) -> str:
    """``train``'s command-line flag for a tunable option."""
    return "--" + name.replace("_", "-")


def _canonical(name: str) -> str:
    key = name.strip().lstrip("-").replace("-", "_")
    if key in NOT_TUNABLE:
        raise ValueError(f"{name} cannot be searched: {NOT_TUNABLE[key]}")
    if key not in TUNABLE:
        raise ValueError(f"{name!r} is not an option a search can vary; choose from {', '.join(TUNABLE)}")
    return key


def _value(name: str, text: str) -> Any:
    text = text.strip()
    if text.lower() == "none" and name in _OPTIONAL:
        return None
    kind = TUNABLE[name]
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise ValueError(f"{name}: expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if not text:
        raise ValueError(f"{name}: empty value")
    return text


def parse_grid(specs: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """``NAME=V1,V2,...`` strings (``--grid``) as {option: values}, typed."""
    grid: dict[str, tuple[Any, ...]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not values.strip():
            raise ValueError(f"--grid {spec!r}: expected NAME=VALUE,VALUE,... (e.g. learning_rate=1e-3,3e-4)")
        key = _canonical(name)
        if key in grid:
            raise ValueError(f"--grid names {key} twice")
        grid[key] = tuple(_value(key, v) for v in values.split(","))
    return grid


@dataclass(frozen=True)
class Range:
    """An interval to draw a number from, uniformly or uniformly in its logarithm."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator, kind: type) -> Any:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        if kind is int:
            return int(min(max(round(value), math.ceil(self.low)), math.floor(self.high)))
        return float(f"{value:.3g}")  # three significant digits read better and change nothing


def parse_ranges(specs: Sequence[str]) -> dict[str, Range]:
    """``NAME=LOW:HIGH`` or ``NAME=LOW:HIGH:log`` strings (``--range``) as {option: Range}."""
    ranges: dict[str, Range] = {}
    for spec in specs:
        name, sep, body = spec.partition("=")
        parts = body.split(":")
        if not sep or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ValueError(f"--range {spec!r}: expected NAME=LOW:HIGH or NAME=LOW:HIGH:log")
        key = _canonical(name)
        if TUNABLE[key] is str:
            raise ValueError(f"--range {spec!r}: {key} takes words; list them with --grid {key}=A,B")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--range {spec!r}: LOW and HIGH must be numbers") from None
        if not low <= high:
            raise ValueError(f"--range {spec!r}: LOW must not exceed HIGH")
        if len(parts) == 3 and low <= 0:
            raise ValueError(f"--range {spec!r}: a log range needs LOW > 0")
        if key in ranges:
            raise ValueError(f"--range names {key} twice")
        ranges[key] = Range(low, high, log=len(parts) == 3)
    return ranges


@dataclass(frozen=True)
class SearchSpace:
    """What to try. Without ``trials``, every combination of the grid (in order);
    with ``trials``, that many random configurations drawn with ``seed``: each
    grid option uniformly from its values, each range option from its interval."""

    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    trials: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.grid and not self.ranges:
            raise ValueError("nothing to search: give --grid NAME=V1,V2 and/or --range NAME=LOW:HIGH with --trials N")
        if self.ranges and self.trials is None:
            raise ValueError("--range draws random values: say how many trials with --trials N")
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        both = sorted(set(self.grid) & set(self.ranges))
        if both:
            raise ValueError(f"{', '.join(both)} given both as a grid and as a range")
        for name in (*self.grid, *self.ranges):
            _canonical(name)
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"--grid {name}: no values")

    def plan(self) -> list[dict[str, Any]]:
        """The options of every trial, in trial order."""
        if self.trials is None:
            names = list(self.grid)
            return [dict(zip(names, combo)) for combo in itertools.product(*(self.grid[n] for n in names))]
        rng = np.random.default_rng(self.seed)
        plan = []
        for _ in range(self.trials):
            options = {name: values[int(rng.integers(len(values)))] for name, values in self.grid.items()}
            options.update({name: r.draw(rng, TUNABLE[name]) for name, r in self.ranges.items()})
            plan.append(options)
        return plan

    def as_dict(self) -> dict[str, Any]:
        return {
            "grid": {k: list(v) for k, v in self.grid.items()},
            "ranges": {k: dataclasses.asdict(r) for k, r in self.ranges.items()},
            "trials": self.trials,
            "seed": self.seed,
        }


def apply_options(base: TrainConfig, options: Mapping[str, Any]) -> TrainConfig:
    """``base`` with ``options`` (tunable names) replaced; a bad value raises the
    ValueError of TrainConfig or NetworkOptions."""
    network = {k: v for k, v in options.items() if k in _NETWORK_FIELDS}
    run = {k: v for k, v in options.items() if k not in _NETWORK_FIELDS}
    return dataclasses.replace(base, options=base.options.replace(**network), **run)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe(options: Mapping[str, Any]) -> str:
    """``name=value ...`` of a trial's options."""
    return " ".join(f"{k}={_format(v)}" for k, v in options.items())


def train_command(config: TrainConfig) -> str:
    """The ``fkd-ops train`` command line that trains ``config`` on its own:
    ``--model``, ``--epochs`` and every setting that differs from the default."""
    args = ["fkd-ops", "train", "--model", config.network, "--epochs", str(config.epochs)]
    default = TrainConfig(network=config.network, out=config.out)
    for name in ("data", "data_seed", "protocol", "seed", "batch_size", "flip_probability", "normalization"):
        value = getattr(config, name)
        if value != getattr(default, name) and not (name == "data_seed" and config.data is not None):
            args += [option_flag(name), _format(value)]
    if config.early_stopping is not None:
        args += [option_flag("early_stopping"), str(config.early_stopping)]
    defaults = NetworkOptions()
    for f in dataclasses.fields(NetworkOptions):
        value = getattr(config.options, f.name)
        if f.name != "decay_steps" and value is not None and value != getattr(defaults, f.name):
            args += [option_flag(f.name), _format(value)]
    return shlex.join(args)


@dataclass
class Trial:
    """One configuration and what became of it."""

    id: str
    options: dict[str, Any]
    status: str = "pending"
    """pending, done or failed."""
    metrics: dict[str, Any] | None = None
    error: str | None = None
    wall_time_s: float | None = None
    history: dict[str, list[float]] | None = None
    host: str | None = None
    peak_memory_mb: float | None = None
    """The trial's Python worker at its largest (Linux: peak resident set)."""

    @property
    def rmse(self) -> float:
        """Validation RMSE in pixels (inf unless done; NaN, from a diverged run, sorts last)."""
        if self.status != "done" or not self.metrics:
            return math.inf
        value = self.metrics.get("validation_rmse_px")
        return math.inf if value is None or math.isnan(value) else float(value)


@dataclass
class TuneResult:
    """A finished search: the trials in trial order, and the best one (None if all failed)."""

    out: Path
    trials: list[Trial]
    best: Trial | None
    best_command: str | None


# --------------------------------------------------------------------------- inside a Spark task


def _pack(folder: Path) -> Iterator[bytes]:
    """A tar archive of ``folder`` in pieces of at most CHUNK bytes, so that no
    record Spark carries is large."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for entry in sorted(folder.iterdir()):
            tar.add(entry, arcname=entry.name)
    data = buffer.getbuffer()
    for begin in range(0, len(data), CHUNK):
        yield bytes(data[begin : begin + CHUNK])


def _scratch(out: Path, trial_id: str) -> tuple[Path, bool]:
    """Where a trial trains: under the tune folder when this executor sees it (a
    local master, or a file system the cluster shares), else in a temporary folder
    whose contents are shipped to the driver. Returns (folder, shared)."""
    trials = out / TRIALS_DIR
    if trials.is_dir() and os.access(trials, os.W_OK):
        return Path(tempfile.mkdtemp(prefix=f".{trial_id}.", suffix=".partial", dir=trials)), True
    return Path(tempfile.mkdtemp(prefix=f"fkd-ops-{trial_id}-")), False


def _run_trial(
    _partition: Iterator[int], *, config: TrainConfig, data: Any, source: str, trial_id: str, out: Path
) -> Iterator[Any]:
    """Trains one configuration in a Spark task. Yields its outcome (a dict; a
    failed training is an outcome, not an exception), then, where the driver
    cannot see the trial's folder, the folder as tar pieces."""
    import resource
    import socket

    started = time.perf_counter()
    scratch, shared = _scratch(out, trial_id)
    run_dir, log = scratch / "run", scratch / TRIAL_LOG
    outcome: dict[str, Any] = {"status": "failed", "metrics": None, "error": None, "history": None}
    try:
        with output_to(log):
            try:
                limit_tensorflow_threads(task_cpus())
                from fkd_ops.train.training import read_history, train

                result = train(dataclasses.replace(config, out=run_dir), data=data.value, source=source)
                outcome.update(status="done", metrics=result.metrics, history=read_history(run_dir / HISTORY_FILE))
            except Exception as exc:  # a failed trial is a result: the search goes on
                traceback.print_exc()
                outcome["error"] = error_line(exc)
        run_dir.mkdir(exist_ok=True)
        os.replace(log, run_dir / TRIAL_LOG)
        for name in _KEPT_FROM_TRIALS:
            path = run_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        outcome.update(
            wall_time_s=round(time.perf_counter() - started, 2),
            host=socket.gethostname(),
            # The Python worker's peak memory: what an executor must hold per trial.
            peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            folder=str(run_dir) if shared else None,
        )
        yield outcome
        if not shared:
            yield from _pack(run_dir)
    finally:
        if not shared:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------- the driver


def _identity(network: str, base: TrainConfig, space: SearchSpace) -> dict[str, Any]:
    settings = base.as_dict()
    for volatile in ("out", "verbose"):
        settings.pop(volatile)
    return json.loads(json.dumps({"network": network, "base": settings, "search": space.as_dict()}))


def _state(out: Path, identity: Mapping[str, Any], trials: Sequence[Trial], extra: Mapping[str, Any]) -> None:
    write_json(
        out / TUNE_FILE,
        {
            **identity,
            **extra,
            "trials": [{**dataclasses.asdict(t), "folder": f"{TRIALS_DIR}/{t.id}"} for t in trials],
        },
    )


def _load_state(out: Path, identity: Mapping[str, Any], trials: list[Trial]) -> int:
    """Fills ``trials`` with the finished ones recorded in ``out``/tune.json;
    returns how many. Refuses a tune started with other settings."""
    path = out / TUNE_FILE
    if not path.is_file():
        raise TrainingError(f"--resume: {out} holds no tune to resume (no {TUNE_FILE})")
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainingError(f"--resume: cannot read {path}: {exc}") from None
    differ = sorted(k for k in identity if saved.get(k) != identity[k])
    if differ:
        raise TrainingError(f"--resume: the tune in {out} was started with other settings ({', '.join(differ)})")
    done = 0
    recorded = {t.get("id"): t for t in saved.get("trials", [])}
    for trial in trials:
        old = recorded.get(trial.id)
        if old and old.get("status") == "done" and old.get("options") == json.loads(json.dumps(trial.options)):
            if (out / TRIALS_DIR / trial.id / CONFIG_FILE).is_file():
                for key in _OUTCOME:
                    setattr(trial, key, old.get(key))
                done += 1
    return done


def _gather(out: Path, trial: Trial, folder: str | None, pieces: Sequence[bytes]) -> str | None:
    """Puts a trial's run folder at ``out``/trials/<id>: moves it there when the
    trial wrote it under the tune folder, else unpacks the ``pieces`` it shipped.
    A new attempt replaces an earlier one only once it is complete. Returns why
    the folder could not be gathered, or None."""
    trials = out / TRIALS_DIR
    final = trials / trial.id
    if folder is not None:
        source = Path(folder)
        if not source.is_dir():
            return (
                f"its folder {source} was written on {trial.host} and is not visible here: on a cluster, give --out "
                "a folder every executor sees, or none that exists on the executors"
            )
    else:
        source = Path(tempfile.mkdtemp(prefix=f".{trial.id}.", suffix=".partial", dir=trials)) / "run"
        source.mkdir()
        with tarfile.open(fileobj=io.BytesIO(b"".join(pieces))) as tar:
            tar.extractall(source, filter="data")
    config = source / CONFIG_FILE
    if config.is_file():  # it names the folder the trial trained in: name this one
        settings = json.loads(config.read_text())
        settings["out"] = str(final)
        write_json(config, settings)
    if final.exists():
        shutil.rmtree(final)
    os.replace(source, final)
    shutil.rmtree(source.parent, ignore_errors=True)
    return None


def tune_table(trials: Sequence[Trial]) -> str:
    """The trials sorted by validation RMSE (failed ones last, with their error)."""
    names = list(dict.fromkeys(k for t in trials for k in t.options))
    widths = {n: max(len(n), *(len(_format(t.options.get(n, ""))) for t in trials)) for n in names}
    header = (
        f"{'rank':>4}  {'trial':<5} "
        + " ".join(f"{n:>{widths[n]}}" for n in names)
        + f" {'val RMSE px':>12} {'train RMSE px':>14} {'epochs':>7} {'time s':>8}"
    )
    lines = [header, "-" * len(header)]
    ranked = sorted(trials, key=lambda t: (t.rmse, t.id))
    for rank, t in enumerate(ranked, 1):
        cells = f"{t.id:<5} " + " ".join(f"{_format(t.options.get(n, '')):>{widths[n]}}" for n in names)
        if t.status == "done":
            m = t.metrics or {}
            lines.append(
                f"{rank:>4}  {cells} {m['validation_rmse_px']:>12.3f} {m['train_rmse_px']:>14.3f} "
                f"{m['epochs']:>7d} {t.wall_time_s:>8.1f}"
            )
        else:
            lines.append(f"{'-':>4}  {cells} {t.status}{': ' + t.error if t.error else ''}")
    return "\n".join(lines)


def tune(
    base: TrainConfig,
    space: SearchSpace,
    out: str | os.PathLike,
    *,
    master: str = DEFAULT_MASTER,
    conf: Mapping[str, str] | None = None,
    task_cpus: int = 1,
    resume: bool = False,
    data: TrainingSet | None = None,
    source: str | None = None,
    say: Callable[[str], None] = print,
) -> TuneResult:
    """Searches ``space`` around ``base`` (the settings every trial shares) on
    Spark and writes the tune folder ``out`` (see the module's docstring).

    Args:
      master: the Spark master: ``local[*]`` (default, embedded), ``local[N]``,
        or a cluster's URL.
      conf: Spark settings (``spark.KEY: value``) over fkd_ops' own.
      task_cpus: cores per trial; TensorFlow in each trial uses as many threads.
      resume: continue the interrupted tune in ``out``: the finished trials are
        kept, the others (failed ones too) run again.
      data, source: an already loaded training set and its name (else read
        from ``base``'s data settings).
      say: receives the progress lines.
    """
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S")
    out = Path(out).resolve()
    base = dataclasses.replace(base, out=out, strategy="default", verbose=2)
    plan = space.plan()
    trials = [Trial(id=f"t{i:03d}", options=options) for i, options in enumerate(plan)]
    if len(trials) > 999:
        raise ValueError(f"{len(trials)} trials: a tune runs at most 999")
    configs = {}
    for t in trials:
        try:
            configs[t.id] = apply_options(base, t.options)
        except ValueError as exc:
            raise ValueError(f"trial {t.id} ({describe(t.options)}): {exc}") from None
    identity = _identity(base.network, base, space)
    ensure_spark()
    if resume:
        finished = _load_state(out, identity, trials)
    else:
        if out.exists() and any(out.iterdir()):
            raise TrainingError(
                f"{out} is not empty: pass --resume to continue the tune there, or choose another --out"
            )
        finished = 0
    (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    for leftover in (out / TRIALS_DIR).glob(".*.partial"):  # of trials that a kill interrupted
        shutil.rmtree(leftover, ignore_errors=True)
    if data is None:
        from fkd_ops.data.builtin import load_training_set

        data, source = load_training_set(base.data, data_seed=base.data_seed)
        say(f"data: {source}: {len(data.keypoints)} faces")
    source = source or "given arrays"
    extra: dict[str, Any] = {
        "data": {"source": source, "faces": len(data.keypoints)},
        "spark": {"master": master, "task_cpus": task_cpus, "conf": dict(conf or {})},
        "started": started_at,
    }
    _state(out, identity, trials, extra)
    todo = [t for t in trials if t.status != "done"]
    if finished:
        say(f"resuming {out}: {finished} of {len(trials)} trials done, {len(todo)} to run")
    total, count = len(trials), finished

    try:
        with spark_context(master, conf=conf, task_cpus=task_cpus, log_path=out / SPARK_LOG) as sc:
            t0 = time.perf_counter()
            shared = sc.broadcast(data)
            parallel = min(slots(sc), max(1, len(todo)))
            say(
                f"spark {sc.version} on {sc.master}: {slots(sc)} task slots of {task_cpus} core(s); "
                f"{megabytes(data):.1f} MB of faces broadcast in "
                f"{time.perf_counter() - t0:.1f} s; {len(todo)} trials of {base.network}, {parallel} at a time; "
                f"log: {out / SPARK_LOG}"
            )
            extra["spark"]["version"] = sc.version

            def run(trial: Trial) -> list[Any]:
                sc.setJobGroup(trial.id, f"fkd-ops tune {trial.id}: {describe(trial.options)}", True)
                task = functools.partial(
                    _run_trial, config=configs[trial.id], data=shared, source=source, trial_id=trial.id, out=out
                )
                try:
                    return sc.parallelize([0], 1).mapPartitions(task).collect()
                except Exception as exc:  # the task itself died (a crash, a kill, lost executor)
                    return [{"status": "failed", "error": f"Spark task: {job_error_message(exc)}"}]

            pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="fkd-tune")
            futures = {pool.submit(run, t): t for t in todo}
            try:
                for future in concurrent.futures.as_completed(futures):
                    trial, (outcome, *pieces) = futures[future], future.result()
                    if "folder" not in outcome and not is_running(sc):
                        raise SparkJobError(
                            f"Spark stopped during trial {trial.id}: {outcome['error']}; the finished trials are "
                            f"recorded in {out / TUNE_FILE}: rerun with --resume (Spark's log: {out / SPARK_LOG})"
                        )
                    for key in _OUTCOME:
                        setattr(trial, key, outcome.get(key))
                    if "folder" in outcome:  # the task ran to its end
                        problem = _gather(out, trial, outcome["folder"], pieces)
                        if problem:
                            trial.status, trial.error = "failed", problem
                    count += 1
                    _state(out, identity, trials, extra)
                    say(_progress_line(trial, count, total))
            except BaseException:
                # Interrupted: stop the running trials; tune.json keeps the finished ones.
                with contextlib.suppress(Exception):
                    sc.cancelAllJobs()
                raise
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
    except KeyboardInterrupt:
        done = sum(t.status == "done" for t in trials)
        say(f"tune interrupted: {done} of {total} trials done, recorded in {out / TUNE_FILE}; rerun with --resume")
        raise

    ranked = sorted((t for t in trials if t.status == "done"), key=lambda t: (t.rmse, t.id))
    best = ranked[0] if ranked else None
    best_command = train_command(configs[best.id]) if best else None
    extra["best"] = (
        {"id": best.id, "validation_rmse_px": best.metrics["validation_rmse_px"], "command": best_command}
        if best
        else None
    )
    extra["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    _state(out, identity, trials, extra)
    _plot(out, ranked)
    return TuneResult(out, trials, best, best_command)


def _progress_line(trial: Trial, count: int, total: int) -> str:
    head = f"[{count}/{total}] {trial.id} {describe(trial.options)}:"
    if trial.status == "done":
        m = trial.metrics or {}
        return (
            f"{head} validation RMSE {m['validation_rmse_px']:.3f} px (train {m['train_rmse_px']:.3f} px), "
            f"{m['epochs']} epochs, {trial.wall_time_s:.1f} s{_memory(trial.peak_memory_mb)}"
        )
    took = f" after {trial.wall_time_s:.1f} s" if trial.wall_time_s is not None else ""
    return f"{head} FAILED{took}: {trial.error}"


def _memory(mb: float | None) -> str:
    return f", {mb / 1024:.1f} GB peak" if mb else ""


def _plot(out: Path, ranked: Sequence[Trial], shown: int = 6) -> None:
    """The learning curves of the best ``shown`` trials, with the predict-the-mean baseline."""
    if not ranked:
        return
    from fkd_ops.train.plots import plot_learning_curves

    curves = {f"{t.id} ({describe(t.options)})": t.history or {} for t in ranked[:shown]}
    plot_learning_curves(
        curves,
        out / CURVES_FILE,
        baseline=(ranked[0].metrics or {}).get("mean_baseline_validation_rmse_px"),
        title=f"{ranked[0].metrics['network']} tune: "
        + ("every finished trial" if len(ranked) <= shown else f"the {shown} best of {len(ranked)} finished trials"),
    )
