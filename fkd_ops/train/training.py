"""Training a network end to end: data, split, distribution strategy, fit with
progress, checkpoints, resume, early stopping, then metrics, pictures and the
saved predictor."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fkd_ops.data.builtin import load_training_set
from fkd_ops.data.kaggle_files import TrainingSet
from fkd_ops.data.pipeline import make_dataset
from fkd_ops.data.splits import split_indices
from fkd_ops.files import atomic_path, write_json
from fkd_ops.keras.networks import build_network, build_predictor
from fkd_ops.keypoints import pixels_to_targets
from fkd_ops.train.checkpoints import (
    ResumableEarlyStopping,
    RunCheckpoint,
    RunState,
    load_checkpoint,
    write_history,
)
from fkd_ops.train.config import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CURVE_FILE,
    FACES_FILE,
    HISTORY_FILE,
    LOG_DIR,
    METRICS_FILE,
    PREDICTOR_FILE,
    STRATEGIES,
    TrainConfig,
    TrainingError,
)
from fkd_ops.train.evaluation import mean_baseline_px, predict_pixels, rmse_px, rmse_report
from fkd_ops.train.multiworker import fit_multiworker
from fkd_ops.train.plots import plot_faces, plot_learning_curves

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced: its metrics (as written to metrics.json) and folder."""

    config: TrainConfig
    metrics: dict[str, Any]

    @property
    def out(self) -> Path:
        return self.config.out


@functools.cache
def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy called ``name``, one per process.

    ``mirrored`` replicates over the visible GPUs, or over the logical CPU devices
    when there is no GPU and more than one CPU device was configured. ``multiworker``
    reads its cluster from the TF_CONFIG environment variable.

    One per process because a second MirroredStrategy over the CPU devices reuses
    the first one's collective instance keys: the next network's all-reduce then
    aborts on a shape mismatch (``train --model all --strategy mirrored`` failed
    so at its second network), and MultiWorkerMirroredStrategy can only be
    configured once.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=cpus)
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise TrainingError("--strategy multiworker needs the TF_CONFIG environment variable (cluster and task)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where this process should write the run's files (worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def _check_folder(config: TrainConfig, resume: bool) -> None:
    """Refuses a folder that holds another run (or, with ``resume``, none that can
    go on). Reads only: nothing is written before every check has passed."""
    out = config.out
    saved = out / CONFIG_FILE
    if out.exists() and not out.is_dir():
        raise TrainingError(f"{out} is a file; --out names the run's folder")
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise TrainingError(f"{out} is not empty: pass --resume to continue the run there, or choose another --out")
        return
    if not saved.is_file():
        raise TrainingError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE})")
    if (out / METRICS_FILE).is_file():
        raise TrainingError(
            f"--resume: the run in {out} has finished ({METRICS_FILE} is there); start a new run in another --out"
        )
    try:
        previous = json.loads(saved.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingError(f"--resume: cannot read {saved}: {exc}") from exc
    if not isinstance(previous, dict):
        raise TrainingError(f"--resume: {saved} is not a run's settings (a JSON object)")
    different = config.mismatches(previous)
    if different:
        raise TrainingError(f"--resume: the run in {out} was started with other settings ({', '.join(different)})")


def _remove_stale_temporaries(folder: Path) -> None:
    """Deletes what atomic writes left behind when a kill stopped them (a
    checkpoint's can be as large as the checkpoint)."""
    for stale in folder.glob(".*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch logs from history.csv; a repeated epoch (runs of earlier
    fkd_ops versions could write one when resumed) counts once."""
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch" and value != "":
                history.setdefault(key, []).append(float(value))
    return history


@dataclass(frozen=True)
class _Run:
    """What one process knows about the run it takes part in."""

    config: TrainConfig
    strategy: tf.distribute.Strategy
    chief: bool
    """Whether this process writes the run folder (worker 0 of a multi-worker run)."""
    folder: Path
    """Where this process writes: the run folder, or a scratch folder on other workers."""
    data: TrainingSet
    source: str
    train_idx: np.ndarray
    val_idx: np.ndarray
    started: float


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    data: TrainingSet | None = None,
    source: str | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainResult:
    """Trains ``config.network`` and writes the run folder.

    The folder receives config.json, TensorBoard logs (logs/), history.csv and
    checkpoint.keras (the run's state, committed atomically after every epoch, so
    ``resume`` continues from the last complete epoch whenever the run was
    killed), and at the end learning_curve.png, validation_faces.png,
    predictor.keras (raw pixels in, keypoints in pixels out) and, last,
    metrics.json; the checkpoint is then removed. Nothing is written until the
    data, the split, the settings and the folder have been checked.

    Under a MultiWorkerMirroredStrategy (``config.strategy == "multiworker"``
    with TF_CONFIG, or one passed as ``strategy``), this call is one worker of
    the run: every worker calls it with the same arguments, the chief writes the
    run folder and the others write to scratch folders that are removed.

    Args:
      resume: continue the interrupted run in ``config.out`` from its last
        complete epoch; a run killed after its last epoch is only finished.
      data: an already loaded training set (skips reading ``config.data``).
      source: how to name ``data`` in logs and metrics.
      strategy: the tf.distribute strategy to use instead of ``config.strategy``'s.
    """
    started = time.perf_counter()
    strategy = strategy or make_strategy(config.strategy)
    chief = is_chief(strategy)
    if chief:
        _check_folder(config, resume)
    if data is None:
        data, source = load_training_set(config.data, data_seed=config.data_seed)
    elif source is None:
        source = str(config.data) if config.data else "given arrays"
    train_idx, val_idx = split_indices(
        data.keypoints, config.protocol, seed=config.seed, validation_fraction=config.validation_fraction
    )
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise TrainingError(
            f"the {config.protocol} split of {source} leaves {len(train_idx)} training and "
            f"{len(val_idx)} validation rows; both must be non-empty"
        )
    log.info(
        "%s: %d training and %d validation rows (%s protocol) from %s",
        config.network,
        len(train_idx),
        len(val_idx),
        config.protocol,
        source,
    )
    model = _build_model(config, data, train_idx, strategy)
    train_ds, val_ds = _datasets(config, data, train_idx, val_idx, strategy)

    if chief:
        if not resume:
            config.out.mkdir(parents=True, exist_ok=True)
            write_json(config.out / CONFIG_FILE, config.as_dict())
        _remove_stale_temporaries(config.out)
    # Workers other than the chief write to a throwaway folder, as TF recommends
    # (saving reads variables that are reduced across all workers).
    folder = config.out if chief else Path(tempfile.mkdtemp(prefix="fkd-ops-worker-"))
    run = _Run(config, strategy, chief, folder, data, source, train_idx, val_idx, started)
    try:
        state = _fit(run, model, train_ds, val_ds, resume=resume)
        return _finish(run, model, state)
    finally:
        if not chief:
            shutil.rmtree(folder, ignore_errors=True)


def _build_model(
    config: TrainConfig, data: TrainingSet, train_idx: np.ndarray, strategy: tf.distribute.Strategy
) -> keras.Model:
    options = config.options
    if options.final_learning_rate is not None and options.decay_steps == 0:
        steps_per_epoch = -(-len(train_idx) // config.batch_size)
        options = options.replace(decay_steps=steps_per_epoch * config.epochs)
    with warnings.catch_warnings():  # a coordinate missing from every row has no mean: 0 (the centre)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_target = np.nan_to_num(np.nanmean(pixels_to_targets(data.keypoints[train_idx]), axis=0))
    with strategy.scope():
        return build_network(config.network, options, seed=config.seed, mean_target=mean_target)


def _uses_own_loop(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``fit`` cannot run under ``strategy`` (keras-team/keras#20585)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def _datasets(
    config: TrainConfig,
    data: TrainingSet,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    strategy: tf.distribute.Strategy,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    replicas = strategy.num_replicas_in_sync

    def batch_size(rows: int) -> int:
        # Keras' fit and evaluate under a multi-replica strategy add up the
        # replicas' shares of a first batch, which fails unless they are the same
        # size: the first batch of each set must split evenly.
        if replicas == 1 or _uses_own_loop(strategy):
            return config.batch_size
        if config.batch_size % replicas:
            raise TrainingError(
                f"--batch-size {config.batch_size} does not split evenly over the {replicas} replicas of "
                f"--strategy {config.strategy}: give a multiple of {replicas}"
            )
        if rows >= config.batch_size:
            return config.batch_size
        if rows < replicas:
            raise TrainingError(f"{rows} rows cannot be shared by {replicas} replicas")
        return rows - rows % replicas

    train_ds = make_dataset(
        data.images[train_idx],
        data.keypoints[train_idx],
        batch_size=batch_size(len(train_idx)),
        training=True,
        seed=config.seed,
        flip_probability=config.flip_probability,
        normalization=config.normalization,
    )
    val_ds = make_dataset(
        data.images[val_idx],
        data.keypoints[val_idx],
        batch_size=batch_size(len(val_idx)),
        training=False,
        normalization=config.normalization,
    )
    if _uses_own_loop(strategy):
        # In-memory datasets have no files to shard by: shard the batches.
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, val_ds = train_ds.with_options(opts), val_ds.with_options(opts)
    return train_ds, val_ds


def _fit(
    run: _Run, model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset, *, resume: bool
) -> RunState:
    """Trains from the last complete epoch of the run's checkpoint (the start
    when there is none) to the end: ``config.epochs``, or the epoch where early
    stopping ended it, and returns the run's final state. A checkpoint that is
    already at the end only runs the callbacks' beginning and end (early
    stopping then restores the best weights)."""
    config = run.config
    state = RunState()
    if resume:
        with run.strategy.scope():  # every worker restores the chief's state
            state = load_checkpoint(config.out / CHECKPOINT_FILE, model)
        if run.chief:
            write_history(config.out / HISTORY_FILE, state.history)  # drops rows of an epoch in flight
    early_stopping = ResumableEarlyStopping(config.early_stopping, state) if config.early_stopping else None
    checkpoint = RunCheckpoint(run.folder, state, early_stopping)
    callbacks: list[keras.callbacks.Callback] = [
        *([early_stopping] if early_stopping else []),
        checkpoint,  # after early stopping, whose state it saves
        keras.callbacks.TensorBoard(str(run.folder / LOG_DIR)),
    ]
    end = state.epochs_done if state.stopped and early_stopping else max(config.epochs, state.epochs_done)
    if resume and run.chief:
        log.info("%s: resuming after epoch %d of %d", config.network, state.epochs_done, end)
    verbose = config.verbose if run.chief else 0
    if _uses_own_loop(run.strategy):
        fit_multiworker(
            model,
            train_ds,
            val_ds,
            strategy=run.strategy,
            epochs=end,
            initial_epoch=state.epochs_done,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        # The dataset shuffles itself (seeded); Keras' own shuffle does not apply to it.
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=end,
            initial_epoch=state.epochs_done,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    return checkpoint.state


def _finish(run: _Run, model: keras.Model, state: RunState) -> TrainResult:
    """Evaluates the trained model through the predictor that the run keeps and,
    on the chief, writes the run's results: pictures, predictor.keras, then
    metrics.json (the run has finished), then removes the checkpoint."""
    config, data, train_idx, val_idx = run.config, run.data, run.train_idx, run.val_idx
    history = state.curves()
    predictor = build_predictor(model, normalization=config.normalization)
    val_truth = data.keypoints[val_idx]
    val_pred = predict_pixels(predictor, data.images[val_idx])
    train_pred = predict_pixels(predictor, data.images[train_idx])
    validation = rmse_report(val_pred, val_truth)
    metrics: dict[str, Any] = {
        "network": config.network,
        "data": run.source,
        "protocol": config.protocol,
        "train_rows": int(len(train_idx)),
        "validation_rows": int(len(val_idx)),
        "epochs": len(history.get("loss", [])),
        "train_rmse_px": rmse_report(train_pred, data.keypoints[train_idx]).rmse_px,
        "validation_rmse_px": validation.rmse_px,
        "validation_per_keypoint_rmse_px": validation.per_keypoint_px,
        "mean_baseline_validation_rmse_px": mean_baseline_px(data.keypoints[train_idx], val_truth),
        "parameters": int(model.count_params()),
        "wall_time_s": None,
        "replicas": int(run.strategy.num_replicas_in_sync),
    }
    if run.chief:
        out = run.folder
        plot_learning_curves(
            {config.network: history},
            out / CURVE_FILE,
            baseline=metrics["mean_baseline_validation_rmse_px"],
            title=f"{config.network}: RMSE per epoch",
        )
        shown = np.arange(min(16, len(val_idx)))
        plot_faces(
            data.images[val_idx][shown],
            out / FACES_FILE,
            truth=val_truth[shown],
            predictions=val_pred[shown],
            titles=[f"{rmse_px(val_pred[i], val_truth[i]):.2f} px" for i in shown],
        )
        with atomic_path(out / PREDICTOR_FILE) as tmp:
            predictor.save(tmp)
    metrics["wall_time_s"] = round(time.perf_counter() - run.started, 2)
    if run.chief:
        write_json(out / METRICS_FILE, metrics)
        # The predictor holds the trained network; the checkpoint's optimizer state
        # was only for resuming. (A kill right here leaves it in a finished run.)
        with contextlib.suppress(FileNotFoundError):
            (out / CHECKPOINT_FILE).unlink()
    return TrainResult(config, metrics)


def summary_table(results: list[TrainResult]) -> str:
    """One line per network: validation and training RMSE in pixels beside the
    predict-the-mean baseline."""
    header = (
        f"{'network':<8} {'val RMSE px':>12} {'train RMSE px':>14} {'mean baseline px':>17} {'epochs':>7} {'time s':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        m = r.metrics
        lines.append(
            f"{m['network']:<8} {m['validation_rmse_px']:>12.3f} {m['train_rmse_px']:>14.3f} "
            f"{m['mean_baseline_validation_rmse_px']:>17.3f} {m['epochs']:>7d} {m['wall_time_s']:>8.1f}"
        )
    return "\n".join(lines)
