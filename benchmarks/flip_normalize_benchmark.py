"""uint8 images -> random flip with keypoint remap -> float normalize.

Contenders, on the same inputs: the fused op fkd_ops.random_flip_normalize
(graph mode), its pure-TF twin fkd_ops.ops.reference.random_flip_normalize (the
tf.image composition: flip_left_right, where, gather, cast) in graph mode and
compiled by XLA, and a numpy memory copy moving as many bytes (the yardstick).
"""

from __future__ import annotations

import numpy as np

from benchmarks import data
from benchmarks.report import ratio, ratio_row, section, timing_row
from benchmarks.timing import interleaved, net_of_floor

SIZES = (128, 1024)
# Batches per call: enough to amortize the call, few enough that B = 128 stays
# in the last-level cache (4 x 5.9 MB) as a recycled pipeline batch would, while
# B = 1024 (47 MB a batch) streams through memory as it does in training.
REPS = {128: 4, 1024: 2}
TARGET_COPY_FRACTION = 0.5
TARGET_VS_XLA = 2.0

METHOD = (
    "Per batch = B uint8 96x96 images + [B, 30] keypoints + a seed -> float32 images scaled "
    "by 1/255, remapped keypoints and the flip decisions (about half flipped). 'chained': one tf.function "
    "call runs R batches, each on its own inputs (time per call / R; the Python dispatch of a "
    "call is amortized alike for every contender). Effective GB/s counts bytes read + written "
    "(1 + 4 per pixel, keypoints in and out, decisions). The numpy copy moves the same number "
    "of bytes (R distinct buffers of half that size, copied into preallocated ones) in the "
    "same rounds: the targets' yardstick (glibc memcpy on one core; the ops use every core, so "
    "they can pass it once a batch streams from memory). 'per call': one batch per call, always the same "
    "one (cache-warm, as a recycled pipeline buffer), Python dispatch included. The floor rows "
    "are calls with the same arguments doing no work; 'net of floor' subtracts the floor from "
    "a chained call before dividing by R. Targets are judged on 'chained' as measured."
)


def _chain(random_flip_normalize, jit: bool):
    import tensorflow as tf

    @tf.function(jit_compile=jit, autograph=False)
    def run(images, keypoints, seeds):
        out = []
        for x, k, s in zip(tf.unstack(images), tf.unstack(keypoints), tf.unstack(seeds)):
            out.append(random_flip_normalize(x, k, s))
        return out

    return run


FLOOR = "tf.function call floor (no work)"


def _floor():
    """A tf.function with the same arguments that does nothing: the dispatch cost."""
    import tensorflow as tf

    return tf.function(lambda images, keypoints, seeds: images, autograph=False)


def _bytes_per_batch(batch: int) -> int:
    pixels = batch * data.IMAGE_SIZE * data.IMAGE_SIZE
    keypoints = batch * data.NUM_COORDINATES * 4
    return pixels * (1 + 4) + 2 * keypoints + batch


def run(quick: bool) -> dict:
    """Times the contenders at B = 128 and 1024; returns a section result."""
    import tensorflow as tf

    import fkd_ops
    from fkd_ops import reference

    rng = np.random.default_rng(6)
    contenders = {
        "fkd_ops fused op (graph)": (fkd_ops.random_flip_normalize, False),
        "pure-TF twin (graph)": (reference.random_flip_normalize, False),
        "pure-TF twin (XLA)": (reference.random_flip_normalize, True),
    }
    op, graph, xla = contenders
    copy = "numpy copy, same bytes"
    timings, ratios, checks = [], [], {}
    for batch in SIZES:
        reps = 2 if quick else REPS[batch]
        images = tf.constant(np.stack([data.images(rng, batch) for _ in range(reps)]))
        keypoints = tf.constant(np.stack([data.keypoints(rng, batch, normalized=False) for _ in range(reps)]))
        seeds = tf.constant(rng.integers(0, 2**31, size=(reps, 2)), dtype=tf.int64)
        fns = {name: _chain(fn, jit) for name, (fn, jit) in contenders.items()}

        # Same images, keypoints and decisions from every contender before any is timed.
        ref = [t.numpy() for t in fns[graph](images, keypoints, seeds)[0]]
        for name, fn in fns.items():
            got = [t.numpy() for t in fn(images, keypoints, seeds)[0]]
            np.testing.assert_array_equal(got[2], ref[2], err_msg=name)
            np.testing.assert_allclose(got[0], ref[0], rtol=1e-6, atol=1e-7, err_msg=name)
            np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, err_msg=name)
        checks[f"B={batch}"] = {"flipped_fraction": float(ref[2].mean())}

        nbytes = _bytes_per_batch(batch)
        half = nbytes // 2
        src = [np.full(half, i, dtype=np.uint8) for i in range(reps)]
        dst = [np.empty(half, dtype=np.uint8) for _ in range(reps)]
        for d in dst:
            d.fill(0)  # first touch outside the timing

        def numpy_copy(count=reps):
            for s, d in zip(src[:count], dst[:count]):
                np.copyto(d, s)

        case = f"B={batch}"
        # Chained: R batches per call, each with its own inputs and outputs.
        calls = {n: (lambda f=f: f(images, keypoints, seeds)) for n, f in fns.items()}
        calls[copy] = numpy_copy
        calls[FLOOR] = lambda f=_floor(): f(images, keypoints, seeds)
        t = interleaved(calls, rounds=3 if quick else 40, warmup=1 if quick else 3, units=reps)
        gbs = {n: nbytes / t[n].median_s / 1e9 for n in calls if n != FLOOR}
        net = net_of_floor({n: v for n, v in t.items() if n != copy}, FLOOR)
        for name in calls:
            timings.append(
                timing_row(
                    case,
                    name,
                    t[name],
                    method="chained",
                    reps_per_call=reps,
                    gb_per_s=gbs.get(name),
                    net_of_floor_us=net[name] * 1e6 if name in net else None,
                )
            )
        # Per call: one batch per call, the same one every call (its output freed
        # before the next call), so it stays as warm in cache as a recycled
        # pipeline buffer; the floor is a call that does no work.
        one = (images[:1], keypoints[:1], seeds[:1])
        singles = {name: _chain(fn, jit) for name, (fn, jit) in contenders.items()}
        per_call = {n: (lambda f=f: f(*one)) for n, f in singles.items()}
        per_call[copy] = lambda: numpy_copy(1)
        per_call[FLOOR] = lambda f=_floor(): f(*one)
        c = interleaved(per_call, rounds=3 if quick else 60, warmup=1 if quick else 5)
        cgbs = {n: nbytes / c[n].median_s / 1e9 for n in per_call}
        for name in per_call:
            timings.append(
                timing_row(
                    case,
                    name,
                    c[name],
                    method="per call",
                    reps_per_call=1,
                    gb_per_s=cgbs[name] if name != FLOOR else None,
                )
            )

        ratios.append(ratio_row(case, "op GB/s / numpy copy GB/s, chained", gbs[op] / gbs[copy], TARGET_COPY_FRACTION))
        ratios.append(ratio_row(case, "XLA twin / op, chained", t[xla].median_s / t[op].median_s, TARGET_VS_XLA))
        ratios.append(ratio_row(case, "graph twin / op, chained", t[graph].median_s / t[op].median_s))
        # How near XLA already is to the copy: an op twice as fast as XLA must
        # stream at twice this fraction of the copy's rate.
        ratios.append(ratio_row(case, "XLA twin GB/s / numpy copy GB/s, chained", gbs[xla] / gbs[copy]))
        ratios.append(ratio_row(case, "XLA twin / op, chained net of floor", ratio(net[xla], net[op])))
        ratios.append(ratio_row(case, "op GB/s / numpy copy GB/s, per call", cgbs[op] / cgbs[copy]))
        ratios.append(ratio_row(case, "XLA twin / op, per call", c[xla].median_s / c[op].median_s))
        ratios.append(ratio_row(case, "graph twin / op, per call", c[graph].median_s / c[op].median_s))
    return section(
        "uint8 -> random flip + keypoint remap -> float normalize: fused op vs tf.image "
        "composition (graph, XLA) vs memory copy",
        METHOD,
        timings,
        ratios,
        checks=checks,
    )
