"""tf.test.compute_gradient with bookkeeping: each check records its largest
|theoretical - numeric| Jacobian entry under the op's name, and conftest prints
the worst per op at the end of the run."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

MAX_ERRORS: dict[str, tuple[float, str]] = {}

# Exactly representable: central differences in float64 then err by about
# delta^2 f'''/6 (truncation, nothing for the linear and quadratic maps) plus
# 1e-16 |f| / delta (rounding); 2^-14 keeps both near 1e-9 for these inputs.
DELTA = 2.0**-14

# A float64 gradient that is right agrees with central differences far below this.
TOLERANCE = 1e-6


def gradient_error(op: str, where: str, f: Callable[..., tf.Tensor], xs: Sequence[np.ndarray]) -> float:
    """Largest |theoretical - numeric| over the Jacobians of f wrt every x; recorded
    under `op`. Fails the calling test when a Jacobian holds NaN or is all zero
    (a check of nothing)."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    theoretical, numeric = tf.test.compute_gradient(f, xs, delta=DELTA)
    error = 0.0
    for i, (t, n) in enumerate(zip(theoretical, numeric)):
        assert np.all(np.isfinite(t)), f"{op} ({where}): theoretical Jacobian {i} has non-finite entries"
        assert np.all(np.isfinite(n)), f"{op} ({where}): numeric Jacobian {i} has non-finite entries"
        assert np.any(n != 0), f"{op} ({where}): numeric Jacobian {i} is all zero, nothing was checked"
        error = max(error, float(np.max(np.abs(t - n))) if t.size else 0.0)
    if error > MAX_ERRORS.get(op, (-1.0, ""))[0]:
        MAX_ERRORS[op] = (error, where)
    return error


def write_summary(path: str) -> None:
    """Writes MAX_ERRORS as JSON, atomically (temp file, then rename)."""
    data = {op: {"max_abs_error": e, "case": w} for op, (e, w) in sorted(MAX_ERRORS.items())}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gradcheck-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
