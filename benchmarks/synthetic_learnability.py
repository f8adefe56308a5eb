"""Is the synthetic data learnable but not trivial?

Trains, for a short while, a small Keras CNN and a linear model (pixels ->
30 coordinates, no hidden layer) on the built-in synthetic training set under
the ``complete`` protocol, through the package's tf.data pipeline (random flips
in training), and prints their validation RMSE in pixels beside predicting the
training set's mean shape. A learnable set lets the CNN beat the mean by a
wide margin; a non-trivial one leaves the linear model clearly behind the CNN.

Usage: python benchmarks/synthetic_learnability.py [--quick] [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fkd_ops.builtin_data import builtin_data  # noqa: E402
from fkd_ops.kaggle_files import read_training  # noqa: E402
from fkd_ops.pipeline import denormalize_targets, make_dataset  # noqa: E402
from fkd_ops.splits import split_indices  # noqa: E402


def rmse_px(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def cnn() -> keras.Model:
    layers = keras.layers
    return keras.Sequential([
        keras.Input((96, 96, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(128, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(256, activation="relu"), layers.Dense(30),
    ], name="cnn")


def linear() -> keras.Model:
    return keras.Sequential([keras.Input((96, 96, 1)), keras.layers.Flatten(), keras.layers.Dense(30)], name="linear")


def run(quick: bool, epochs: int | None = None, seed: int = 0) -> dict:
    """Trains both models; returns validation RMSE (pixels) of each and of the mean."""
    keras.utils.set_random_seed(seed)
    n_train = 2000 if quick else 7049
    data = read_training(builtin_data(n_train=n_train, n_test=0 if quick else 1783, seed=0).training)
    train, val = split_indices(data.keypoints, "complete", seed=seed)
    epochs = epochs or (8 if quick else 30)
    truth = data.keypoints[val]
    results: dict = {"train_rows": len(train), "validation_rows": len(val), "epochs": epochs}
    results["mean_rmse_px"] = rmse_px(np.nanmean(data.keypoints[train], axis=0)[None], truth)

    for build, learning_rate in ((cnn, 1e-3), (linear, 1e-4)):
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", jit_compile=False)
        train_ds = make_dataset(data.images[train], data.keypoints[train], batch_size=32, training=True, seed=seed)
        start = time.perf_counter()
        model.fit(train_ds, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - start
        predicted = denormalize_targets(model.predict(
            make_dataset(data.images[val], None, batch_size=256, training=False), verbose=0))
        results[f"{model.name}_rmse_px"] = rmse_px(predicted, truth)
        results[f"{model.name}_train_s"] = seconds
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2000 faces, 8 epochs")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    r = run(args.quick, args.epochs)
    print(f"complete protocol: {r['train_rows']} training / {r['validation_rows']} validation faces, "
          f"{r['epochs']} epochs")
    print(f"  validation RMSE, predict the mean shape: {r['mean_rmse_px']:6.3f} px")
    print(f"  validation RMSE, linear model:           {r['linear_rmse_px']:6.3f} px  ({r['linear_train_s']:.0f} s)")
    print(f"  validation RMSE, small CNN:              {r['cnn_rmse_px']:6.3f} px  ({r['cnn_train_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
