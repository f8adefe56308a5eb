"""``Model.fit`` for tf.distribute.MultiWorkerMirroredStrategy.

Keras 3's ``fit`` cannot run under MultiWorkerMirroredStrategy (it reduces a
sample batch eagerly across workers and fails: keras-team/keras#20585), so
multi-worker runs step through the data here: ``strategy.run`` over the
distributed dataset with the model's own loss, optimizer and an exact RMSE
metric. Everything around the steps is ``fit``'s: the same Keras callbacks, in a
``keras.callbacks.CallbackList``, receive the same calls with logs of the same
names (``loss``, ``rmse_px``, ``val_loss``, ``val_rmse_px``), so checkpoints,
history, early stopping, TensorBoard and the progress bar are those of a
single-process run. What this loop cannot share with ``fit`` is the step itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from fkd_ops.keras.metrics import MaskedRmseMetric


def fit_multiworker(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    *,
    strategy: tf.distribute.Strategy,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int | str = 1,
) -> None:
    """Trains ``model`` (compiled with a masked-RMSE loss, built in ``strategy``'s
    scope) from epoch ``initial_epoch`` up to ``epochs``, as
    ``model.fit(train_ds, validation_data=val_ds, ...)`` would.

    Every worker must call it with the same arguments (each writes where its
    callbacks say). The metrics are summed across workers, so every worker sees
    the same logs and callbacks such as early stopping decide alike everywhere.
    """
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        train_metric = MaskedRmseMetric(name="rmse_px")
        val_metric = MaskedRmseMetric(name="val_rmse_px")
        train_loss, val_loss = (
            tf.Variable(
                0.0,
                dtype=tf.float64,
                trainable=False,
                aggregation=tf.VariableAggregation.SUM,
                synchronization=tf.VariableSynchronization.ON_READ,
            )
            for _ in range(2)
        )
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    loss_fn = model.loss

    def total_loss(targets, predictions):  # with the regularization, as fit reports it
        return loss_fn(targets, predictions) + tf.add_n(model.losses or [tf.constant(0.0)])

    @tf.function
    def train_step(batch):
        def replica_step(images, targets):
            with tf.GradientTape() as tape:
                predictions = model(images, training=True)
                loss = total_loss(targets, predictions)
                # The optimizer sums gradients over replicas: divide so the step
                # follows the mean of the replicas' losses.
                scaled = loss / replicas
            grads = tape.gradient(scaled, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
            train_metric.update_state(targets, predictions)
            train_loss.assign_add(tf.cast(loss, tf.float64))

        strategy.run(replica_step, args=batch)

    @tf.function
    def val_step(batch):
        def replica_step(images, targets):
            predictions = model(images, training=False)
            val_metric.update_state(targets, predictions)
            val_loss.assign_add(tf.cast(total_loss(targets, predictions), tf.float64))

        strategy.run(replica_step, args=batch)

    dist_train = strategy.experimental_distribute_dataset(train_ds)
    dist_val = strategy.experimental_distribute_dataset(val_ds)
    steps = int(train_ds.cardinality()) if train_ds.cardinality() > 0 else None
    callback_list = keras.callbacks.CallbackList(
        list(callbacks),
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )

    def logs(metric, loss, steps_run: int) -> dict[str, float]:
        # The loss is averaged over replica steps, as fit averages it over batches.
        return {"loss": float(loss.read_value()) / max(steps_run * replicas, 1), "rmse_px": float(metric.result())}

    model.stop_training = False
    callback_list.on_train_begin()
    epoch_logs: dict[str, float] = {}
    for epoch in range(initial_epoch, epochs):
        for variable in (train_loss, val_loss):
            variable.assign(0.0)
        train_metric.reset_state()
        val_metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        step = 0
        for step, batch in enumerate(dist_train, start=1):
            callback_list.on_train_batch_begin(step - 1)
            train_step(batch)
            callback_list.on_train_batch_end(step - 1, logs(train_metric, train_loss, step))
        epoch_logs = logs(train_metric, train_loss, step)
        callback_list.on_test_begin()
        val_steps = 0
        for val_steps, batch in enumerate(dist_val, start=1):
            callback_list.on_test_batch_begin(val_steps - 1)
            val_step(batch)
            callback_list.on_test_batch_end(val_steps - 1)
        val_logs = logs(val_metric, val_loss, val_steps)
        callback_list.on_test_end(val_logs)
        epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end(epoch_logs)
