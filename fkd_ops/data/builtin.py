"""The built-in data set: synthetic Kaggle-format files, generated once into a
cache folder and reused.

The cache lives in ``$FKD_OPS_CACHE`` or else ``~/.cache/fkd_ops``; each data set
has its own folder named by generator version, sizes and seed. A folder is
written under a temporary name and renamed when complete, so an interrupted
run never leaves a half-written data set behind (its leftovers are removed by
the next run).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from fkd_ops.data.kaggle_files import TrainingSet, read_training
from fkd_ops.data.synthetic import (
    GENERATOR_VERSION,
    LOOKUP_FILE,
    TEST_FILE,
    TEST_KEYPOINTS_FILE,
    TRAINING_FILE,
    SyntheticFiles,
    write_synthetic_kaggle,
)

log = logging.getLogger(__name__)

DEFAULT_TRAIN = 7049
"""Training faces by default: as many as the real training.csv."""
DEFAULT_TEST = 1783
"""Test faces by default: as many as the real test.csv."""

CACHE_ENV = "FKD_OPS_CACHE"
_PARTIAL = re.compile(r"^(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.partial$")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$FKD_OPS_CACHE``, else ``~/.cache/fkd_ops``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path.home() / ".cache" / "fkd_ops"


def _files_in(folder: Path) -> SyntheticFiles:
    return SyntheticFiles(
        training=folder / TRAINING_FILE,
        test=folder / TEST_FILE,
        lookup_table=folder / LOOKUP_FILE,
        test_keypoints=folder / TEST_KEYPOINTS_FILE,
    )


def _complete(files: SyntheticFiles) -> bool:
    return all(p.is_file() for p in (files.training, files.test, files.lookup_table, files.test_keypoints))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_leftovers(root: Path) -> None:
    """Deletes temporary folders of generations whose process has died."""
    for entry in root.glob("*.partial"):
        match = _PARTIAL.match(entry.name)
        if match and entry.is_dir() and not _pid_alive(int(match["pid"])):
            log.info("removing %s, left by an interrupted generation", entry)
            shutil.rmtree(entry, ignore_errors=True)


class _ProgressLine:
    """Progress on stderr: one rewritten line on a terminal, a line per quarter otherwise."""

    def __init__(self, what: str):
        self._what, self._start, self._shown = what, time.monotonic(), -1
        self._tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        elapsed = time.monotonic() - self._start
        text = f"fkd_ops: {self._what}: {done}/{total} faces ({elapsed:.0f} s)"
        if self._tty:
            print("\r" + text, end="\n" if done >= total else "", file=sys.stderr, flush=True)
        elif done * 4 // total > self._shown:
            self._shown = done * 4 // total
            print(text, file=sys.stderr, flush=True)


def builtin_data(
    n_train: int = DEFAULT_TRAIN,
    n_test: int = DEFAULT_TEST,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    *,
    show_progress: bool = True,
) -> SyntheticFiles:
    """The built-in synthetic data set's files, generated on first use.

    Args:
      n_train, n_test: faces in training.csv and test.csv.
      seed: the generator's seed; each (sizes, seed) is its own cached set.
      cache_dir: where the sets are kept (default ``$FKD_OPS_CACHE`` or
        ``~/.cache/fkd_ops``).
      show_progress: report generation progress on stderr.

    Returns:
      The paths of training.csv, test.csv, IdLookupTable.csv and
      test_keypoints.csv, in Kaggle's exact format.
    """
    root = cache_root(cache_dir)
    name = f"synthetic-v{GENERATOR_VERSION}-train{n_train}-test{n_test}-seed{seed}"
    folder = root / name
    files = _files_in(folder)
    if _complete(files):
        log.debug("built-in data from the cache: %s", folder)
        return files

    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    what = f"generating the built-in synthetic data ({n_train} training + {n_test} test faces) once, into {folder}"
    log.info(what)
    partial = Path(tempfile.mkdtemp(prefix=f"{name}.{os.getpid()}.", suffix=".partial", dir=root))
    try:
        write_synthetic_kaggle(
            partial, n_train=n_train, n_test=n_test, seed=seed, progress=_ProgressLine(what) if show_progress else None
        )
        try:
            os.rename(partial, folder)
        except OSError:
            if _complete(files):
                log.info("another process generated %s first; using it", folder)
            else:  # a damaged set (a file deleted by hand): replace it
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(partial, folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(partial)
    return files


def load_training_set(data: Path | None, *, data_seed: int = 0) -> tuple[TrainingSet, str]:
    """The training set at ``data`` (csv or zip), or else the built-in synthetic set
    generated from ``data_seed``."""
    if data is not None:
        return read_training(data), str(data)
    files = builtin_data(seed=data_seed)
    return read_training(files.training), f"built-in synthetic set ({files.training})"
