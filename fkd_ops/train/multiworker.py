"""The training loop for tf.distribute.MultiWorkerMirroredStrategy.

Keras 3's ``Model.fit`` cannot run under MultiWorkerMirroredStrategy (it reduces
a sample batch eagerly across workers and fails: keras-team/keras#20585), so
multi-worker runs use this loop instead: ``strategy.run`` over the distributed
dataset with the same model, loss, optimizer and exact RMSE metric, a progress
bar and history.csv on the chief, and a tf.train.Checkpoint every epoch from
which ``--resume`` continues.
"""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import tensorflow as tf

from fkd_ops.files import atomic_write
from fkd_ops.keras.metrics import MaskedRmseMetric


def _append_history(path: Path, epoch: int, logs: dict[str, float]) -> None:
    rows: list[list[str]] = []
    if path.is_file():
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    header = ["epoch", *sorted(logs)]
    if not rows:
        rows = [header]
    rows.append([str(epoch), *(repr(float(logs[k])) for k in header[1:])])
    with atomic_write(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def fit_multiworker(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    *,
    strategy: tf.distribute.Strategy,
    epochs: int,
    backup_dir: Path,
    restore_dir: Path,
    chief: bool,
    history_file: Path,
    early_stopping: int | None = None,
    verbose: int | str = 1,
) -> None:
    """Trains ``model`` (compiled with a masked-RMSE loss, built in ``strategy``'s
    scope) for ``epochs`` epochs.

    Each worker writes its checkpoint to ``backup_dir`` (the chief's is the run's;
    the others throw theirs away) and every worker resumes from the chief's latest
    checkpoint in ``restore_dir``, so all restart from the same state.

    Every worker makes the same decisions (the validation metric is summed across
    workers), so early stopping stops them together and keeps the best weights.
    """
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        train_metric = MaskedRmseMetric(name="rmse_px")
        val_metric = MaskedRmseMetric(name="val_rmse_px")
        loss_sum = tf.Variable(
            0.0,
            dtype=tf.float64,
            trainable=False,
            aggregation=tf.VariableAggregation.SUM,
            synchronization=tf.VariableSynchronization.ON_READ,
        )
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        model.optimizer.build(model.trainable_variables)
    loss_fn = model.loss

    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, str(backup_dir), max_to_keep=1)
    latest = tf.train.latest_checkpoint(str(restore_dir))
    if latest:
        checkpoint.restore(latest).expect_partial()

    @tf.function
    def train_step(batch):
        def replica_step(images, targets):
            with tf.GradientTape() as tape:
                predictions = model(images, training=True)
                # The optimizer sums gradients over replicas: divide so the step
                # follows the mean of the replicas' losses.
                loss = loss_fn(targets, predictions)
                scaled = loss / replicas + tf.add_n(model.losses or [tf.constant(0.0)]) / replicas
            grads = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            train_metric.update_state(targets, predictions)
            loss_sum.assign_add(tf.cast(loss, tf.float64))

        strategy.run(replica_step, args=batch)

    @tf.function
    def val_step(batch):
        def replica_step(images, targets):
            val_metric.update_state(targets, model(images, training=False))

        strategy.run(replica_step, args=batch)

    dist_train = strategy.experimental_distribute_dataset(train_ds)
    dist_val = strategy.experimental_distribute_dataset(val_ds)
    steps = int(train_ds.cardinality()) if train_ds.cardinality() > 0 else None
    best, best_weights, waited = float("inf"), None, 0
    for e in range(int(epoch.numpy()), epochs):
        if chief and verbose:
            print(f"Epoch {e + 1}/{epochs}", flush=True)
        progress = keras.utils.Progbar(steps, verbose=verbose if chief else 0, stateful_metrics=["rmse_px"])
        train_metric.reset_state()
        val_metric.reset_state()
        loss_sum.assign(0.0)
        n = 0
        for batch in dist_train:
            train_step(batch)
            n += 1
            progress.update(n, [("rmse_px", float(train_metric.result()))])
        for batch in dist_val:
            val_step(batch)
        logs = {
            "loss": float(loss_sum.read_value()) / max(n * replicas, 1),
            "rmse_px": float(train_metric.result()),
            "val_rmse_px": float(val_metric.result()),
        }
        if chief:
            progress.update(n, [("val_rmse_px", logs["val_rmse_px"])], finalize=True)
            _append_history(history_file, e, logs)
        epoch.assign(e + 1)
        manager.save()
        if early_stopping:
            if logs["val_rmse_px"] < best:
                best, best_weights, waited = logs["val_rmse_px"], model.get_weights(), 0
            else:
                waited += 1
                if waited >= early_stopping:
                    break
    if best_weights is not None:  # as EarlyStopping(restore_best_weights=True) does
        with strategy.scope():
            model.set_weights(best_weights)
