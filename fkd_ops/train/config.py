"""What defines a training run and the files of its folder. Plain Python (no
TensorFlow), so the command line can offer and check the choices without loading it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fkd_ops.data.splits import PROTOCOLS
from fkd_ops.keras.options import NETWORK_NAMES, NetworkOptions
from fkd_ops.ops.normalization import IMAGE_NORMALIZATIONS

STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multiworker")
"""tf.distribute strategies: the default one, mirrored over local devices, or
multi-worker from TF_CONFIG."""

SPARK_STRATEGY = "spark"
"""``train --strategy spark``: multi-worker training whose workers are Spark
barrier tasks (fkd_ops.train.spark); each task runs the ``multiworker`` strategy."""

DEFAULT_EPOCHS: dict[str, int] = {"linear": 15, "hidden": 15, "cnn": 4}
"""Epochs when none are given: the built-in main job trains all three networks in
a few minutes on two cores."""

# Files of one run folder.
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
"""Written last: its presence means the run has finished."""
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.keras"
"""The network, its optimizer state and the run's progress (epochs done, history,
early stopping), rewritten atomically every epoch and removed when the run finishes."""
PREDICTOR_FILE = "predictor.keras"
"""The finished run's model: raw pixels in, keypoints in pixels out (the network inside)."""
CURVE_FILE = "learning_curve.png"
FACES_FILE = "validation_faces.png"
LOG_DIR = "logs"


class TrainingError(RuntimeError):
    """A run cannot start or go on (bad folder, resume mismatch, ...)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as config.json)."""

    network: str
    out: Path
    data: Path | None = None
    """training.csv or training.zip; None uses the built-in synthetic set."""
    protocol: str = "masked"
    epochs: int = 10
    batch_size: int = 64
    validation_fraction: float = 0.2
    seed: int = 0
    """Seeds the split, the initial weights, the shuffle order and the flips."""
    data_seed: int = 0
    """Seed of the built-in synthetic set (each seed is its own set of faces); unused with ``data``."""
    flip_probability: float = 0.5
    normalization: str = "scale"
    early_stopping: int | None = None
    """Patience in epochs on the validation RMSE; None trains every epoch."""
    strategy: str = "default"
    options: NetworkOptions = field(default_factory=NetworkOptions)
    verbose: int | str = "auto"

    def __post_init__(self) -> None:
        if self.network not in NETWORK_NAMES:
            raise ValueError(f"network must be one of {NETWORK_NAMES}, got {self.network!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.normalization not in IMAGE_NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {IMAGE_NORMALIZATIONS}, got {self.normalization!r}")
        if not 0.0 <= self.flip_probability <= 1.0:
            raise ValueError(f"flip_probability must be in [0, 1], got {self.flip_probability}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ValueError(f"early_stopping patience must be >= 1, got {self.early_stopping}")

    def identity(self) -> dict[str, Any]:
        """The settings a resumed run must share with the interrupted one."""
        d = self.as_dict()
        for volatile in ("epochs", "early_stopping", "verbose", "out"):
            d.pop(volatile)
        return d

    def mismatches(self, saved: Mapping[str, Any]) -> list[str]:
        """The settings in which ``saved`` (a run's config.json) differs from this
        config, sorted. A setting the file lacks counts as its default: runs written
        before the setting existed (such as ``data_seed``) used that default."""
        defaults = TrainConfig(network=self.network, out=self.out).identity()
        theirs = _with_defaults(_as_json(saved), _as_json(defaults))
        mine = _as_json(self.identity())
        return sorted(k for k in mine if mine[k] != theirs.get(k))

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["out"] = str(self.out)
        d["data"] = str(self.data) if self.data is not None else None
        return d


def _as_json(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists, and so on)."""
    return json.loads(json.dumps(value))


def _with_defaults(saved: Any, defaults: Any) -> Any:
    if not isinstance(saved, dict) or not isinstance(defaults, dict):
        return saved
    merged = dict(saved)
    for key, default in defaults.items():
        merged[key] = _with_defaults(saved[key], default) if key in saved else default
    return merged
