"""Masked RMSE forward + backward: the fkd_ops op against its pure-TF twin.

Contenders, on the same inputs: the op (graph mode, tf.function), the twin
fkd_ops.ops.reference.masked_rmse in graph mode, and the twin compiled by XLA
(jit_compile=True). One unit of work is a training step's share of the loss:
the loss and its gradient with respect to the predictions.
"""

from __future__ import annotations

import numpy as np

from benchmarks import data
from benchmarks.report import ratio, ratio_row, section, timing_row
from benchmarks.timing import interleaved, net_of_floor

SIZES = (128, 4096)
TARGET_VS_GRAPH = 3.0
TARGET_VS_XLA = 1.5

METHOD = (
    "Per step = loss + gradient w.r.t. predictions of [B, 30] float32 (Kaggle-like NaN pattern). "
    "'chained': one tf.function runs R steps, step k+1 taking step k's gradient as its "
    "predictions and its own targets, so steps run one after another and nothing is shared "
    "between them; time per call / R (the Python dispatch of a tf.function call, 0.2-1 ms "
    "on a busy 2-core machine, is amortized alike for every contender). 'per call': one "
    "step per tf.function call, dispatch included. The floor rows are calls with the same "
    "arguments doing no work; 'net of floor' subtracts the floor from a chained call before "
    "dividing by R. Targets are judged on 'chained' as measured (the floor not subtracted)."
)


FLOOR = "tf.function call floor (no work)"


def _floor():
    """A tf.function with the same arguments that does nothing: the dispatch cost."""
    import tensorflow as tf

    return tf.function(lambda p, targets: p, autograph=False)


def _step(masked_rmse):
    import tensorflow as tf

    def step(p, t):
        with tf.GradientTape() as tape:
            tape.watch(p)
            loss = masked_rmse(p, t).loss
        return loss, tape.gradient(loss, p)

    return step


def _chain(masked_rmse, jit: bool):
    import tensorflow as tf

    step = _step(masked_rmse)

    @tf.function(jit_compile=jit, autograph=False)
    def run(p, targets):
        losses = []
        for t in tf.unstack(targets):
            loss, p = step(p, t)
            losses.append(loss)
        return tf.stack(losses), p

    return run


def run(quick: bool) -> dict:
    """Times the three contenders at B = 128 and 4096; returns a section result."""
    import tensorflow as tf

    import fkd_ops
    from fkd_ops import reference

    rng = np.random.default_rng(6)
    contenders = {
        "fkd_ops op (graph)": (fkd_ops.masked_rmse, False),
        "pure-TF twin (graph)": (reference.masked_rmse, False),
        "pure-TF twin (XLA)": (reference.masked_rmse, True),
    }
    op, graph, xla = contenders
    timings, ratios, checks = [], [], {}
    for batch in SIZES:
        reps = 4 if quick else max(8, 8192 // batch)
        p = tf.constant(data.predictions(rng, batch))
        targets = tf.constant(np.stack([data.keypoints(rng, batch, normalized=True) for _ in range(reps)]))
        one = targets[:1]

        chained = {name: _chain(fn, jit) for name, (fn, jit) in contenders.items()}
        single = {name: _chain(fn, jit) for name, (fn, jit) in contenders.items()}
        # Same numbers from every contender before any is timed.
        loss_ref, grad_ref = (t.numpy() for t in single[graph](p, one))
        worst = 0.0
        for name, fn in single.items():
            loss, grad = (t.numpy() for t in fn(p, one))
            np.testing.assert_allclose(loss, loss_ref, rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(grad, grad_ref, rtol=1e-4, atol=1e-9, err_msg=name)
            worst = max(worst, float(np.max(np.abs(grad - grad_ref))))
        checks[f"B={batch}"] = {"max_abs_grad_diff": worst}

        case = f"B={batch}"
        chain_calls = {n: (lambda f=f: f(p, targets)) for n, f in chained.items()}
        chain_calls[FLOOR] = lambda f=_floor(): f(p, targets)
        t_chain = interleaved(chain_calls, rounds=3 if quick else 40, warmup=1 if quick else 3, units=reps)
        per_call = {n: (lambda f=f: f(p, one)) for n, f in single.items()}
        per_call[FLOOR] = lambda f=_floor(): f(p, one)
        t_call = interleaved(per_call, rounds=3 if quick else 150, warmup=1 if quick else 10)
        net = net_of_floor(t_chain, FLOOR)
        for name in chain_calls:
            timings.append(
                timing_row(
                    case,
                    name,
                    t_chain[name],
                    method="chained",
                    reps_per_call=reps,
                    net_of_floor_us=net[name] * 1e6 if name in net else None,
                )
            )
        for name in per_call:
            timings.append(timing_row(case, name, t_call[name], method="per call"))
        ratios.append(
            ratio_row(case, "graph twin / op, chained", t_chain[graph].median_s / t_chain[op].median_s, TARGET_VS_GRAPH)
        )
        ratios.append(
            ratio_row(case, "XLA twin / op, chained", t_chain[xla].median_s / t_chain[op].median_s, TARGET_VS_XLA)
        )
        ratios.append(ratio_row(case, "graph twin / op, chained net of floor", ratio(net[graph], net[op])))
        ratios.append(ratio_row(case, "XLA twin / op, chained net of floor", ratio(net[xla], net[op])))
        ratios.append(ratio_row(case, "graph twin / op, per call", t_call[graph].median_s / t_call[op].median_s))
        ratios.append(ratio_row(case, "XLA twin / op, per call", t_call[xla].median_s / t_call[op].median_s))
    return section(
        "masked RMSE forward + backward: fkd_ops op vs pure-TF twin (graph, XLA)",
        METHOD,
        timings,
        ratios,
        checks=checks,
    )
