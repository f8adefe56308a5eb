"""A run's settings: what --resume compares with the run's config.json."""

from __future__ import annotations

from pathlib import Path

from fkd_ops.train.config import TrainConfig


def test_resume_reads_a_missing_setting_as_its_default_and_names_real_differences():
    config = TrainConfig(network="cnn", out=Path("run"), epochs=3)
    saved = config.as_dict()
    assert config.mismatches(saved) == []
    # config.json of runs written before --data-seed existed: no such key.
    del saved["data_seed"]
    del saved["options"]["hidden_units"]
    assert config.mismatches(saved) == []
    assert TrainConfig(network="cnn", out=Path("run"), data_seed=1).mismatches(saved) == ["data_seed"]
    # Settings a resumed run may change (more epochs, where the folder is now).
    assert config.mismatches({**config.as_dict(), "epochs": 9, "out": "moved"}) == []
    changed = {**config.as_dict(), "seed": 4, "options": {**config.as_dict()["options"], "l2": 0.1}}
    assert config.mismatches(changed) == ["options", "seed"]
