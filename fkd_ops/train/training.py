"""Training a network end to end: data, split, distribution strategy, fit with
progress, checkpoints, resume, early stopping, then metrics, pictures and the
saved models."""

from __future__ import annotations

import csv
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
from fkd_ops.files import write_json
from fkd_ops.keras.networks import build_network, build_predictor
from fkd_ops.keypoints import pixels_to_targets
from fkd_ops.train.config import (
    BACKUP_DIR,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CURVE_FILE,
    FACES_FILE,
    HISTORY_FILE,
    LOG_DIR,
    METRICS_FILE,
    MODEL_FILE,
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


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy called ``name``.

    ``mirrored`` replicates over the visible GPUs, or over the logical CPU devices
    when there is no GPU and more than one CPU device was configured. ``multiworker``
    reads its cluster from the TF_CONFIG environment variable.
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


def _prepare_folder(config: TrainConfig, resume: bool) -> None:
    out = config.out
    saved = out / CONFIG_FILE
    if resume:
        if not saved.is_file():
            raise TrainingError(f"--resume: {out} holds no run to resume (no {CONFIG_FILE})")
        if (out / METRICS_FILE).is_file():
            raise TrainingError(
                f"--resume: the run in {out} has finished ({METRICS_FILE} is there); start a new run in another --out"
            )
        previous = json.loads(saved.read_text())
        mine = config.identity()
        theirs = {k: previous.get(k) for k in mine}
        if json.loads(json.dumps(mine)) != theirs:
            diff = sorted(k for k in mine if json.loads(json.dumps(mine[k])) != theirs.get(k))
            raise TrainingError(f"--resume: the run in {out} was started with other settings ({', '.join(diff)})")
        return
    if out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} is not empty: pass --resume to continue the run there, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(saved, config.as_dict())


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch logs from the CSV logger; a row repeated by a resumed run
    (written before the interruption, then again) counts once."""
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = row
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch":
                history.setdefault(key, []).append(float(value))
    return history


def train(
    config: TrainConfig, *, resume: bool = False, data: TrainingSet | None = None, source: str | None = None
) -> TrainResult:
    """Trains ``config.network`` and writes the run folder.

    The folder receives config.json, TensorBoard logs (logs/), a checkpoint every
    epoch (checkpoint.keras, and backup/ for --resume), history.csv, and at the
    end metrics.json, model.keras (the network), predictor.keras (raw pixels in,
    pixels out), learning_curve.png and validation_faces.png.

    Args:
      resume: continue the interrupted run in ``config.out`` where it stopped.
      data: an already loaded training set (skips reading ``config.data``).
      source: how to name ``data`` in logs and metrics.
    """
    started = time.perf_counter()
    strategy = make_strategy(config.strategy)
    chief = is_chief(strategy)
    if chief:
        _prepare_folder(config, resume)
    # Workers other than the chief write to a throwaway folder, as TF recommends.
    out = config.out if chief else Path(tempfile.mkdtemp(prefix="fkd-ops-worker-"))

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

    steps_per_epoch = -(-len(train_idx) // config.batch_size)
    options = config.options
    if options.final_learning_rate is not None and options.decay_steps == 0:
        options = options.replace(decay_steps=steps_per_epoch * config.epochs)
    with warnings.catch_warnings():  # a coordinate missing from every row has no mean: 0 (the centre)
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_target = np.nan_to_num(np.nanmean(pixels_to_targets(data.keypoints[train_idx]), axis=0))
    with strategy.scope():
        model = build_network(config.network, options, seed=config.seed, mean_target=mean_target)

    train_ds = make_dataset(
        data.images[train_idx],
        data.keypoints[train_idx],
        batch_size=config.batch_size,
        training=True,
        seed=config.seed,
        flip_probability=config.flip_probability,
        normalization=config.normalization,
    )
    val_ds = make_dataset(
        data.images[val_idx],
        data.keypoints[val_idx],
        batch_size=config.batch_size,
        training=False,
        normalization=config.normalization,
    )
    if config.strategy == "multiworker":
        # In-memory datasets have no files to shard by: shard the batches.
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, val_ds = train_ds.with_options(opts), val_ds.with_options(opts)
        fit_multiworker(
            model,
            train_ds,
            val_ds,
            strategy=strategy,
            epochs=config.epochs,
            backup_dir=out / BACKUP_DIR,
            restore_dir=config.out / BACKUP_DIR,
            chief=chief,
            history_file=out / HISTORY_FILE,
            early_stopping=config.early_stopping,
            verbose=config.verbose,
        )
    else:
        _fit(model, train_ds, val_ds, config, out)
    try:
        return _finish(config, model, strategy, data, source, train_idx, val_idx, out, chief, started)
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


def _fit(
    model: keras.Model, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset, config: TrainConfig, out: Path
) -> None:
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.BackupAndRestore(str(out / BACKUP_DIR), double_checkpoint=True),
        keras.callbacks.CSVLogger(str(out / HISTORY_FILE), append=True),
        keras.callbacks.ModelCheckpoint(str(out / CHECKPOINT_FILE)),
        keras.callbacks.TensorBoard(str(out / LOG_DIR)),
    ]
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_rmse_px", mode="min", patience=config.early_stopping, restore_best_weights=True
            )
        )
    # The dataset shuffles itself (seeded); Keras' own shuffle does not apply to it.
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=config.verbose,
        shuffle=False,
    )


def _finish(
    config: TrainConfig,
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    data: TrainingSet,
    source: str,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    out: Path,
    chief: bool,
    started: float,
) -> TrainResult:
    """Evaluates the trained model and writes the run's results (chief only)."""
    history = read_history(out / HISTORY_FILE)
    val_truth = data.keypoints[val_idx]
    val_pred = predict_pixels(model, data.images[val_idx], normalization=config.normalization)
    train_pred = predict_pixels(model, data.images[train_idx], normalization=config.normalization)
    validation = rmse_report(val_pred, val_truth)
    metrics: dict[str, Any] = {
        "network": config.network,
        "data": source,
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
        "replicas": int(strategy.num_replicas_in_sync),
    }
    if chief:
        model.save(out / MODEL_FILE)
        build_predictor(model, normalization=config.normalization).save(out / PREDICTOR_FILE)
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
    metrics["wall_time_s"] = round(time.perf_counter() - started, 2)
    if chief:
        write_json(out / METRICS_FILE, metrics)
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
