"""The search space of `fkd-ops tune`: grids in order, seeded random draws inside
their ranges, options applied to a run's settings, and one-line reasons for
what cannot be searched. Plain Python: no Spark, no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from fkd_ops.train.config import TrainConfig
from fkd_ops.train.tune import Range, SearchSpace, apply_options, parse_grid, parse_ranges


def test_grid_is_every_combination_in_order_with_typed_values():
    space = SearchSpace(grid=parse_grid(["learning-rate=1e-3,3e-4", "dropout=0,0.3", "optimizer=adam"]))
    assert space.plan() == [
        {"learning_rate": 1e-3, "dropout": 0.0, "optimizer": "adam"},
        {"learning_rate": 1e-3, "dropout": 0.3, "optimizer": "adam"},
        {"learning_rate": 3e-4, "dropout": 0.0, "optimizer": "adam"},
        {"learning_rate": 3e-4, "dropout": 0.3, "optimizer": "adam"},
    ]


def test_random_search_is_seeded_and_stays_inside_its_ranges():
    def space(seed: int) -> SearchSpace:
        return SearchSpace(
            grid=parse_grid(["normalization=scale,standardize"]),
            ranges=parse_ranges(["learning_rate=1e-4:1e-2:log", "batch_size=16:128", "dropout=0:0.5"]),
            trials=40,
            seed=seed,
        )

    plan = space(7).plan()
    assert plan == space(7).plan()
    assert plan != space(8).plan()
    assert len(plan) == 40
    assert all(1e-4 <= p["learning_rate"] <= 1e-2 and 0 <= p["dropout"] <= 0.5 for p in plan)
    assert all(isinstance(p["batch_size"], int) and 16 <= p["batch_size"] <= 128 for p in plan)
    assert {p["normalization"] for p in plan} == {"scale", "standardize"}
    # Log-uniform: about as many draws below 1e-3 (the geometric middle) as above.
    below = sum(p["learning_rate"] < 1e-3 for p in plan)
    assert 10 <= below <= 30
    assert Range(1e-4, 1e-2, log=True) == space(0).ranges["learning_rate"]


def test_options_apply_to_the_network_and_to_the_run():
    base = TrainConfig(network="cnn", out=Path("x"), epochs=3)
    config = apply_options(base, {"learning_rate": 3e-4, "dropout": 0.3, "batch_size": 32, "early_stopping": None})
    assert (config.options.learning_rate, config.options.dropout, config.batch_size) == (3e-4, 0.3, 32)
    assert config.epochs == 3 and config.early_stopping is None
    with pytest.raises(ValueError, match="dropout must be in"):
        apply_options(base, {"dropout": 1.5})


@pytest.mark.parametrize(
    "build, words",
    [
        (lambda: parse_grid(["seed=1,2"]), "validation rows"),
        (lambda: parse_grid(["protocol=masked,complete"]), "--protocol"),
        (lambda: parse_grid(["learnig_rate=1e-3"]), "learning_rate"),
        (lambda: parse_grid(["batch_size=16,big"]), "batch_size: expected an integer, got 'big'"),
        (lambda: parse_grid(["dropout"]), "NAME=VALUE"),
        (lambda: parse_ranges(["optimizer=0:1"]), "--grid optimizer=A,B"),
        (lambda: parse_ranges(["l2=1:0"]), "LOW must not exceed HIGH"),
        (lambda: parse_ranges(["l2=0:1:log"]), "LOW > 0"),
        (lambda: SearchSpace(ranges=parse_ranges(["l2=0:1"])), "--trials"),
        (lambda: SearchSpace(), "nothing to search"),
    ],
)
def test_what_cannot_be_searched_says_why(build, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace("+", r"\+")):
        build()
