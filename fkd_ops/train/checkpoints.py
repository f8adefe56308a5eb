"""A run's progress on disk, so that a kill at any instant loses at most the
epoch in flight.

Everything ``--resume`` needs is in one file, ``checkpoint.keras``: a Keras model
file (the network and its optimizer state; ``keras.models.load_model`` reads it)
with two more members, the run's progress (epochs done, per-epoch history, early
stopping's state) and early stopping's best weights. It is written to a
temporary name and renamed, so the rename is the one instant an epoch becomes
part of the run: before it the previous epoch's file is whole, after it the new
one is. ``history.csv`` is a view of the checkpoint's history, rewritten (also
atomically) after each commit and on resume, so its rows are never ahead of the
checkpoint or repeated.

Keras' own ``BackupAndRestore`` is not used: it writes its weights and
``training_metadata.json`` in place, as two files, so a kill can leave an empty
metadata file (the run cannot resume) or weights one epoch ahead of the epoch
count (an epoch trained twice).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fkd_ops.files import atomic_path, atomic_write
from fkd_ops.train.config import CHECKPOINT_FILE, HISTORY_FILE, TrainingError

STATE_MEMBER = "fkd_ops_run_state.json"
"""Member of checkpoint.keras holding :class:`RunState` (Keras ignores it)."""
BEST_WEIGHTS_MEMBER = "fkd_ops_best_weights.npz"
"""Member of checkpoint.keras holding early stopping's best weights, when it has some."""
_FORMAT = 1


@dataclass(frozen=True)
class RunState:
    """How far a run has come: what a checkpoint holds beside the weights."""

    epochs_done: int = 0
    history: tuple[dict[str, float], ...] = ()
    """One entry per finished epoch: ``epoch`` (from 0) and the epoch's logs."""
    early_stopping: dict[str, Any] | None = None
    """:meth:`ResumableEarlyStopping.get_state` after the last finished epoch."""
    best_weights: list[np.ndarray] | None = field(default=None, repr=False)

    def curves(self) -> dict[str, list[float]]:
        """The history by log name: ``{"loss": [...], "val_rmse_px": [...], ...}``."""
        curves: dict[str, list[float]] = {}
        for row in self.history:
            for key, value in row.items():
                if key != "epoch":
                    curves.setdefault(key, []).append(float(value))
        return curves

    @property
    def stopped(self) -> bool:
        """True once early stopping has ended the training."""
        return bool(self.early_stopping and self.early_stopping.get("stopped_epoch", 0) > 0)


def save_checkpoint(path: Path, model: keras.Model, state: RunState) -> None:
    """Writes ``model`` (weights and optimizer state) and ``state`` to ``path``
    as one file, atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            progress = {
                "format": _FORMAT,
                "epochs_done": state.epochs_done,
                "history": list(state.history),
                "early_stopping": state.early_stopping,
            }
            archive.writestr(STATE_MEMBER, json.dumps(progress))
            if state.best_weights is not None:
                buffer = io.BytesIO()
                np.savez(buffer, *state.best_weights)
                archive.writestr(BEST_WEIGHTS_MEMBER, buffer.getvalue())


def load_checkpoint(path: Path, model: keras.Model) -> RunState:
    """Restores ``model``'s weights and optimizer state from ``path`` and returns
    the run's progress; a fresh :class:`RunState` when there is no checkpoint yet
    (the run was stopped during its first epoch)."""
    if not path.is_file():
        return RunState()
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if STATE_MEMBER not in names:
                raise TrainingError(
                    f"{path} holds no run state: it was written by an fkd_ops older than this one, "
                    "whose interrupted runs cannot be resumed; start the run again in a new --out"
                )
            progress = json.loads(archive.read(STATE_MEMBER))
            best = None
            if BEST_WEIGHTS_MEMBER in names:
                with np.load(io.BytesIO(archive.read(BEST_WEIGHTS_MEMBER))) as npz:
                    best = [npz[f"arr_{i}"] for i in range(len(npz.files))]
        if progress.get("format") != _FORMAT:
            raise TrainingError(f"{path}: run state format {progress.get('format')!r}, this fkd_ops reads {_FORMAT}")
        state = RunState(
            epochs_done=int(progress["epochs_done"]),
            history=tuple(progress["history"]),
            early_stopping=progress["early_stopping"],
            best_weights=best,
        )
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so that its state loads too
        model.load_weights(path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
        raise TrainingError(f"{path}: cannot resume from this checkpoint: {exc}") from exc
    return state


def write_history(path: Path, history: tuple[dict[str, float], ...]) -> None:
    """history.csv: a row per epoch, ``epoch`` first, then the logs by name
    (the columns of Keras' CSVLogger); no file for an empty history."""
    if not history:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    keys = sorted({k for row in history for k in row} - {"epoch"})
    with atomic_write(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *keys])
        for row in history:
            writer.writerow([int(row["epoch"]), *(repr(float(row[k])) if k in row else "" for k in keys)])


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping on the validation RMSE, keeping the best weights,
    whose state a resumed run carries on from (patience already spent, the best
    epoch and its weights) instead of starting afresh."""

    def __init__(self, patience: int, restored: RunState | None = None) -> None:
        super().__init__(monitor="val_rmse_px", mode="min", patience=patience, restore_best_weights=True)
        self._restored = restored

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        state = self._restored
        if state is not None and state.early_stopping is not None:
            for name in ("wait", "stopped_epoch", "best", "best_epoch"):
                setattr(self, name, state.early_stopping[name])
            self.best_weights = state.best_weights

    def get_state(self) -> dict[str, Any]:
        best = None if self.best is None else float(self.best)
        return {"wait": self.wait, "stopped_epoch": self.stopped_epoch, "best": best, "best_epoch": self.best_epoch}


class RunCheckpoint(keras.callbacks.Callback):
    """At the end of every epoch, commits the epoch to ``folder``: the checkpoint
    (see :func:`save_checkpoint`), then history.csv. Place it after the
    callbacks whose state it saves (early stopping)."""

    def __init__(self, folder: Path, state: RunState, early_stopping: ResumableEarlyStopping | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.state = state
        self.early_stopping = early_stopping

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        es = self.early_stopping
        self.state = replace(
            self.state,
            epochs_done=epoch + 1,
            history=(*self.state.history, row),
            early_stopping=None if es is None else es.get_state(),
            best_weights=None if es is None else es.best_weights,
        )
        save_checkpoint(self.folder / CHECKPOINT_FILE, self.model, self.state)
        write_history(self.folder / HISTORY_FILE, self.state.history)
