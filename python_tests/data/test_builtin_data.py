"""The built-in data set: generated once into the cache, reused, never half-written."""

from __future__ import annotations

import os

import pytest

from fkd_ops.data import builtin as bd
from fkd_ops.data.builtin import builtin_data
from fkd_ops.data.kaggle_files import read_training
from fkd_ops.data.synthetic import GENERATOR_VERSION


def test_generated_once_then_reused(tmp_path, monkeypatch):
    files = builtin_data(n_train=5, n_test=3, seed=1, cache_dir=tmp_path, show_progress=False)
    assert files.training.parent == tmp_path / f"synthetic-v{GENERATOR_VERSION}-train5-test3-seed1"
    assert read_training(files.training).images.shape == (5, 96, 96)
    stamp = files.training.stat().st_mtime_ns

    def must_not_generate(*_args, **_kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(bd, "write_synthetic_kaggle", must_not_generate)
    again = builtin_data(n_train=5, n_test=3, seed=1, cache_dir=tmp_path)
    assert again == files and again.training.stat().st_mtime_ns == stamp


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FKD_OPS_CACHE", str(tmp_path / "env-cache"))
    files = builtin_data(n_train=2, n_test=1, seed=0, show_progress=False)
    assert files.training.is_relative_to(tmp_path / "env-cache")
    monkeypatch.delenv("FKD_OPS_CACHE")
    assert bd.cache_root() == bd.Path.home() / ".cache" / "fkd_ops"


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    real = bd.write_synthetic_kaggle

    def interrupted(directory, **kwargs):
        real(directory, **kwargs)  # every file written...
        raise KeyboardInterrupt  # ...then the user presses Ctrl-C before the rename

    monkeypatch.setattr(bd, "write_synthetic_kaggle", interrupted)
    with pytest.raises(KeyboardInterrupt):
        builtin_data(n_train=2, n_test=1, seed=0, cache_dir=tmp_path, show_progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(bd, "write_synthetic_kaggle", real)
    files = builtin_data(n_train=2, n_test=1, seed=0, cache_dir=tmp_path, show_progress=False)
    assert read_training(files.training).images.shape == (2, 96, 96)


def test_leftovers_of_dead_runs_are_removed(tmp_path):
    dead = tmp_path / "synthetic-v1-train2-test1-seed0.999999999.abc123.partial"
    dead.mkdir()
    (dead / "training.csv").write_text("half")
    alive = tmp_path / f"synthetic-v1-train2-test1-seed0.{os.getpid()}.xyz.partial"
    alive.mkdir()
    builtin_data(n_train=2, n_test=1, seed=0, cache_dir=tmp_path, show_progress=False)
    assert not dead.exists() and alive.exists()


def test_damaged_set_is_regenerated(tmp_path):
    files = builtin_data(n_train=2, n_test=1, seed=0, cache_dir=tmp_path, show_progress=False)
    files.test.unlink()
    again = builtin_data(n_train=2, n_test=1, seed=0, cache_dir=tmp_path, show_progress=False)
    assert again.test.is_file()
