"""Training throughput: each network fed by the fkd_ops pipeline vs a pure-TF pipeline.

Contenders, per network (linear, hidden, cnn), at fkd-ops train's batch size:

- fkd_ops: exactly what ``fkd-ops train`` runs. ``fkd_ops.data.pipeline.make_dataset``
  (uint8 pixels -> the fused random_flip_normalize op inside tf.data) feeding
  ``fkd_ops.keras.networks.build_network(name)``, compiled with the masked-RMSE op loss
  and metric, XLA off.
- pure TF: the same tf.data pipeline built from the pure-TF twins
  (``make_dataset(..., ops=fkd_ops.ops.reference)``: tf.image.flip_left_right, where,
  gather, cast) feeding the same network, from the same initial weights, compiled
  with the same optimizer and a loss and a metric computed by the twin
  ``fkd_ops.ops.reference.masked_rmse``: no fkd_ops op runs anywhere in it.

Both train on the same synthetic faces (in memory, with the Kaggle file's
missing-keypoint pattern), shuffled and flipped alike. Before anything is
timed, the two pipelines are checked to yield the same batches and one epoch
of training is checked to give both contenders the same losses and weights.
"""

from __future__ import annotations

import numpy as np

from benchmarks.report import ratio_row, section, timing_row
from benchmarks.timing import interleaved

NETWORKS = ("linear", "hidden", "cnn")
BATCH_SIZE = 64  # fkd-ops train's default
SEED = 6
TARGET = 1.0  # fkd_ops images/s over pure-TF images/s, for every network

# Per network: faces per epoch (a multiple of the batch) and timed rounds. One
# round trains each contender one epoch; the CNN runs about 150 images/s on 2
# cores, the others 10-30x faster, so they get longer epochs and more rounds.
FULL = {"linear": (2560, 11), "hidden": (2560, 11), "cnn": (640, 9)}
FULL_WARMUP = 1
PIPELINE_ROUNDS = 11
PIPELINE_CASE = "pipeline alone"
QUICK = {name: (2 * BATCH_SIZE, 1) for name in NETWORKS}

OURS = "fkd_ops pipeline + op loss"
TWIN = "pure-TF pipeline + twin loss"

METHOD = (
    f"One unit = one image of a training epoch: model.fit(dataset, epochs=1, verbose=0) over N "
    f"synthetic faces (uint8, Kaggle missing-keypoint pattern) in batches of {BATCH_SIZE}, "
    f"shuffled and randomly flipped (p = 0.5) in tf.data, Adam, XLA off. '{OURS}': "
    f"fkd_ops.data.pipeline.make_dataset (fused random_flip_normalize op) + the network compiled "
    f"by fkd_ops.keras.networks.build_network (MaskedRmseLoss / MaskedRmseMetric on the op), as "
    f"fkd-ops train runs it. '{TWIN}': make_dataset(ops=fkd_ops.ops.reference) (tf.image "
    f"flip_left_right + where + gather + cast) + the same network from the same initial "
    f"weights, with loss and metric from the twin reference.masked_rmse. Each round trains "
    f"each contender one epoch, alternating which goes first, after an untimed checking epoch "
    f"and {FULL_WARMUP} untimed warm-up round; images/s = N / median epoch time (its q1/q3 from "
    f"the epoch times' q3/q1 across rounds). Both models keep training across rounds, on the same batches. "
    f"'{PIPELINE_CASE}': one epoch of each dataset iterated without training, over all "
    f"the faces (the most any network uses)."
)


def _twin_loss_and_metric():
    """Keras loss and metric of the same math as fkd_ops.keras.losses / fkd_ops.keras.metrics,
    computed by the pure-TF twin instead of the op."""
    import tensorflow as tf

    from fkd_ops import reference
    from fkd_ops.keras.losses import MaskedRmseLoss
    from fkd_ops.keras.metrics import MaskedRmseMetric

    class TwinMaskedRmseLoss(MaskedRmseLoss):
        def call(self, y_true, y_pred):
            y_pred = tf.cast(y_pred, self.dtype)
            y_true = tf.cast(y_true, self.dtype)
            return reference.masked_rmse(y_pred, y_true, squared=self.squared).loss

    class TwinMaskedRmseMetric(MaskedRmseMetric):
        def update_state(self, y_true, y_pred, sample_weight=None) -> None:
            if sample_weight is not None:
                raise ValueError("sample_weight is not supported")
            result = reference.masked_rmse(tf.cast(y_pred, tf.float64), tf.cast(y_true, tf.float64))
            self.sum_sq.assign_add(result.sum_sq)
            self.count.assign_add(result.count)

    return TwinMaskedRmseLoss, TwinMaskedRmseMetric


def _models(name: str, mean_target: np.ndarray):
    """The two contenders' models: the same network, the same initial weights."""
    from fkd_ops.keras.networks import NetworkOptions, build_network, make_optimizer
    from fkd_ops.keypoints import IMAGE_SIZE

    ours = build_network(name, seed=SEED, mean_target=mean_target)
    twin = build_network(name, seed=SEED, mean_target=mean_target)
    loss, metric = _twin_loss_and_metric()
    twin.compile(
        optimizer=make_optimizer(NetworkOptions(), name),
        loss=loss(),
        metrics=[metric(scale=IMAGE_SIZE / 2, name="rmse_px")],
        jit_compile=False,
    )
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: initial weights differ")
    return ours, twin


def _check_pipelines_agree(images: np.ndarray, keypoints: np.ndarray) -> None:
    """Fresh datasets of both implementations yield the same epoch."""
    from fkd_ops import reference
    from fkd_ops.data.pipeline import make_dataset

    ours = make_dataset(images, keypoints, batch_size=BATCH_SIZE, training=True, seed=SEED)
    twin = make_dataset(images, keypoints, batch_size=BATCH_SIZE, training=True, seed=SEED, ops=reference)
    count = 0
    for (x, y), (tx, ty) in zip(ours, twin):
        np.testing.assert_allclose(tx.numpy(), x.numpy(), rtol=1e-6, atol=1e-7, err_msg="images")
        np.testing.assert_allclose(ty.numpy(), y.numpy(), rtol=1e-6, err_msg="targets")
        count += len(x)
    if count != len(images):
        raise AssertionError(f"an epoch yielded {count} of {len(images)} faces")


def _check_epoch_agrees(name: str, ours, twin, ours_ds, twin_ds) -> dict:
    """Trains both one epoch (untimed: it also traces the train steps) and checks
    that they computed the same thing."""
    h_ours = ours.fit(ours_ds, epochs=1, verbose=0, shuffle=False).history
    h_twin = twin.fit(twin_ds, epochs=1, verbose=0, shuffle=False).history
    for key in ("loss", "rmse_px"):
        np.testing.assert_allclose(h_twin[key], h_ours[key], rtol=1e-4, err_msg=f"{name}: {key}")
    # Adam moves a weight by up to about one learning rate a step, whatever the
    # gradient's size, so a rounding difference between the op and the twin (or
    # oneDNN's threaded reductions) can tip a near-zero gradient's step either
    # way: over an epoch the weights must stay within a tenth of a step per step.
    steps = int(ours.optimizer.iterations.numpy())
    tolerance = 0.1 * float(ours.optimizer.learning_rate) * max(steps, 1)
    worst = 0.0
    for a, b in zip(ours.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(b, a, rtol=0, atol=tolerance, err_msg=f"{name}: weights after an epoch")
        worst = max(worst, float(np.max(np.abs(a - b))))
    return {
        "first_epoch_loss": float(h_ours["loss"][0]),
        "first_epoch_loss_rel_diff": abs(h_twin["loss"][0] / h_ours["loss"][0] - 1.0),
        "max_abs_weight_diff": worst,
    }


def _throughput_row(case: str, contender: str, timing, images: int, **extra) -> dict:
    return timing_row(
        case,
        contender,
        timing,
        images_per_epoch=images,
        epoch_s=timing.median_s * images,
        images_per_s=1.0 / timing.median_s,
        images_per_s_q1=1.0 / timing.q3_s,
        images_per_s_q3=1.0 / timing.q1_s,
        **extra,
    )


def _epoch_of(dataset) -> None:
    for _ in dataset:
        pass


def run(quick: bool) -> dict:
    """Times one training epoch of each network with each pipeline; returns a section result."""
    from fkd_ops import reference
    from fkd_ops.data.pipeline import make_dataset
    from fkd_ops.data.synthetic import generate_faces
    from fkd_ops.keypoints import pixels_to_targets

    plan = QUICK if quick else FULL
    warmup = 0 if quick else FULL_WARMUP
    faces = generate_faces(max(n for n, _ in plan.values()), seed=SEED)
    images, keypoints = faces.images, faces.file_keypoints()
    _check_pipelines_agree(images, keypoints)

    timings, ratios, checks, notes = [], [], {}, []
    # The pipelines alone (an epoch iterated, no training): what the networks'
    # ratios can be made of.
    n = len(images)
    pipelines = {
        OURS: make_dataset(images, keypoints, batch_size=BATCH_SIZE, training=True, seed=SEED),
        TWIN: make_dataset(images, keypoints, batch_size=BATCH_SIZE, training=True, seed=SEED, ops=reference),
    }
    alone = interleaved(
        {c: (lambda ds=ds: _epoch_of(ds)) for c, ds in pipelines.items()},
        rounds=1 if quick else PIPELINE_ROUNDS,
        warmup=1 if quick else 2,
        units=n,
    )
    for contender, timing in alone.items():
        timings.append(_throughput_row(PIPELINE_CASE, contender.split(" + ")[0], timing, n))
    ratios.append(
        ratio_row(PIPELINE_CASE, "fkd_ops images/s / pure-TF images/s", alone[TWIN].median_s / alone[OURS].median_s)
    )

    for name in NETWORKS:
        n, rounds = plan[name]
        x, k = images[:n], keypoints[:n]
        mean_target = np.nan_to_num(np.nanmean(pixels_to_targets(k), axis=0))
        ours, twin = _models(name, mean_target)
        ours_ds = make_dataset(x, k, batch_size=BATCH_SIZE, training=True, seed=SEED)
        twin_ds = make_dataset(x, k, batch_size=BATCH_SIZE, training=True, seed=SEED, ops=reference)
        checks[name] = _check_epoch_agrees(name, ours, twin, ours_ds, twin_ds)
        checks[name]["parameters"] = int(ours.count_params())

        # shuffle=False only silences Keras' warning: a dataset is never shuffled by fit.
        epochs = {
            OURS: lambda: ours.fit(ours_ds, epochs=1, verbose=0, shuffle=False),
            TWIN: lambda: twin.fit(twin_ds, epochs=1, verbose=0, shuffle=False),
        }
        t = interleaved(epochs, rounds=rounds, warmup=warmup, units=n)
        for contender, timing in t.items():
            timings.append(_throughput_row(name, contender, timing, n))
        ratios.append(
            ratio_row(name, "fkd_ops images/s / pure-TF images/s", t[TWIN].median_s / t[OURS].median_s, TARGET)
        )
        saved = (alone[TWIN].median_s - alone[OURS].median_s) / t[TWIN].median_s
        notes.append(
            f"{name}: the pure-TF pipeline alone takes {alone[TWIN].median_s / t[TWIN].median_s:.1%} "
            f"of a pure-TF training epoch's time, the fkd_ops pipeline "
            f"{alone[OURS].median_s / t[TWIN].median_s:.1%} (a difference of {saved:.1%}, "
            f"partly hidden by tf.data running beside the training step)"
        )
    return section(
        f"training throughput, batch {BATCH_SIZE}: fkd_ops pipeline + op loss vs pure-TF "
        f"pipeline (twins + tf.image) + twin loss",
        METHOD,
        timings,
        ratios,
        notes,
        checks=checks,
    )
