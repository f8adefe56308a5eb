"""The search space of `fkd-ops tune`: grids in order, seeded random draws inside
their ranges, options applied to a run's settings, one-line reasons for what
cannot be searched; and trial folders gathered on the driver. Plain Python: no
Spark, no TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fkd_ops.train import tune as tune_module
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


def test_a_trial_folder_shipped_in_pieces_is_gathered_whole(tmp_path, monkeypatch):
    # Where the executors cannot see the tune folder, a trial ships its folder to
    # the driver as tar pieces; the driver unpacks them in place of an earlier attempt.
    monkeypatch.setattr(tune_module, "CHUNK", 1000)
    run = tmp_path / "executor" / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text('{"network": "cnn", "out": "/scratch/on/the/executor"}')
    (run / "model.keras").write_bytes(bytes(range(256)) * 20)
    (run / "logs" / "events").write_text("event")
    pieces = list(tune_module._pack(run))
    assert len(pieces) > 5 and max(map(len, pieces)) <= 1000

    out = tmp_path / "tune"
    (out / "trials" / "t004").mkdir(parents=True)
    (out / "trials" / "t004" / "stale").write_text("an earlier, failed attempt")
    trial = tune_module.Trial(id="t004", options={"dropout": 0.3}, host="executor-1")
    assert tune_module._gather(out, trial, None, pieces) is None
    folder = out / "trials" / "t004"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "logs", "model.keras"]
    assert (folder / "model.keras").read_bytes() == (run / "model.keras").read_bytes()
    assert json.loads((folder / "config.json").read_text())["out"] == str(folder)
    assert [p.name for p in (out / "trials").iterdir()] == ["t004"]  # no temporary folder left

    # A folder written on an executor's own disk, out of the driver's sight: said so.
    problem = tune_module._gather(out, trial, str(tmp_path / "elsewhere"), [])
    assert "executor-1" in problem and "every executor sees" in problem
