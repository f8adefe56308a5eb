"""The two split protocols."""

from __future__ import annotations

import numpy as np
import pytest

from fkd_ops.data.splits import complete_rows, split_indices


def _keypoints(n: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 96, (n, 30))
    partial = rng.random(n) < 0.7
    kp[partial, 4:20] = np.nan  # most rows carry only some points, as in the real file
    return kp


def test_complete_protocol():
    kp = _keypoints()
    complete = np.flatnonzero(complete_rows(kp))
    train, val = split_indices(kp, "complete", seed=3)
    assert train.dtype == val.dtype == np.int64
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), complete)
    assert len(val) == round(0.2 * len(complete))
    assert not np.isnan(kp[np.concatenate([train, val])]).any()
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)


def test_masked_protocol_keeps_every_row_and_nests_the_complete_one():
    kp = _keypoints()
    train, val = split_indices(kp, "masked", seed=3, validation_fraction=0.25)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(len(kp)))
    assert abs(len(val) - 0.25 * len(kp)) <= 1
    assert np.isnan(kp[train]).any()  # missing targets stay, for the masked loss
    complete_train, complete_val = split_indices(kp, "complete", seed=3, validation_fraction=0.25)
    assert np.isin(complete_val, val).all()  # the same held-out complete faces
    assert np.isin(complete_train, train).all()
    # Complete and incomplete rows are held out in the same proportion.
    complete = complete_rows(kp)
    assert abs(complete[val].mean() - complete.mean()) < 0.02


def test_deterministic_from_the_seed():
    kp = _keypoints()
    for protocol in ("complete", "masked"):
        a, b = split_indices(kp, protocol, seed=11), split_indices(kp, protocol, seed=11)
        np.testing.assert_array_equal(a[1], b[1])
        c = split_indices(kp, protocol, seed=12)
        assert not np.array_equal(a[1], c[1])


def test_no_validation():
    train, val = split_indices(_keypoints(), "masked", validation_fraction=0.0)
    assert len(val) == 0 and len(train) == 500


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"protocol": "all"}, "protocol must be one of"),
        ({"validation_fraction": 1.0}, "validation_fraction must be in"),
        ({"validation_fraction": -0.1}, "validation_fraction must be in"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_bad_arguments(kwargs, words):
    args = {"protocol": "complete", **kwargs}
    with pytest.raises(ValueError, match=words):
        split_indices(_keypoints(), args.pop("protocol"), **args)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"keypoints must have shape \[N, 30\]"):
        split_indices(np.zeros((4, 29)), "masked")
