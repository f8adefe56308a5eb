"""The choices that define a network: its name, optimizer, learning rate and
regularization. Plain Python (no TensorFlow), so the command line offers them
without loading Keras."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

NETWORK_NAMES: tuple[str, ...] = ("linear", "hidden", "cnn")
OPTIMIZERS: tuple[str, ...] = ("adam", "nesterov")

DEFAULT_LEARNING_RATES: dict[tuple[str, str], float] = {
    # Measured on the built-in data (10 epochs, masked protocol): with Adam, 1e-3
    # makes the 9216-input dense layers overshoot; 1e-4 trains them, the CNN
    # wants 1e-3. Nesterov: Nouri's 0.01 for the nets, less for the bare linear map.
    ("adam", "linear"): 1e-4,
    ("adam", "hidden"): 1e-4,
    ("adam", "cnn"): 1e-3,
    ("nesterov", "linear"): 1e-3,
    ("nesterov", "hidden"): 1e-2,
    ("nesterov", "cnn"): 1e-2,
}


@dataclass(frozen=True)
class NetworkOptions:
    """Choices from the literature (Daniel Nouri's tutorial and what users try)."""

    optimizer: str = "adam"
    """``adam`` or ``nesterov`` (SGD with Nesterov momentum)."""
    learning_rate: float | None = None
    """None picks :data:`DEFAULT_LEARNING_RATES` for the network and optimizer."""
    final_learning_rate: float | None = None
    """If set, the learning rate decays linearly to this value over ``decay_steps``."""
    decay_steps: int = 0
    momentum: float = 0.9
    l2: float = 0.0
    """L2 penalty on every kernel."""
    dropout: float = 0.0
    """Rate after each hidden dense layer; the CNN's three conv stages get 1/5, 2/5
    and 3/5 of it (0.5 gives Nouri's net6: 0.1, 0.2, 0.3, then 0.5)."""
    hidden_units: int = 100
    """Width of the ``hidden`` network's one hidden layer."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.final_learning_rate is not None and not 0 < self.final_learning_rate:
            raise ValueError(f"final_learning_rate must be > 0, got {self.final_learning_rate}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.hidden_units < 1:
            raise ValueError(f"hidden_units must be >= 1, got {self.hidden_units}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def replace(self, **changes) -> NetworkOptions:
        return dataclasses.replace(self, **changes)
