"""Is the synthetic data learnable but not trivial?

Fits, on the built-in synthetic training set under the ``complete`` protocol,
a small Keras CNN (trained for a short while through the package's tf.data
pipeline, random flips included) and linear models (pixels -> 30 coordinates):
the best linear fit (ridge regression solved exactly, its penalty picked on an
inner split of the training rows) and a Keras network with no hidden layer
trained like the CNN. Prints their validation RMSE in pixels beside predicting
the training set's mean shape. A learnable set lets the CNN beat the mean by a
wide margin; a non-trivial one leaves the linear models clearly behind the CNN.

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

from fkd_ops.data.builtin import builtin_data  # noqa: E402
from fkd_ops.data.kaggle_files import read_training  # noqa: E402
from fkd_ops.data.pipeline import make_dataset  # noqa: E402
from fkd_ops.data.splits import split_indices  # noqa: E402
from fkd_ops.keypoints import targets_to_pixels  # noqa: E402


def rmse_px(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def cnn() -> keras.Model:
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((96, 96, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(30),
        ],
        name="cnn",
    )


def linear() -> keras.Model:
    return keras.Sequential([keras.Input((96, 96, 1)), keras.layers.Flatten(), keras.layers.Dense(30)], name="linear")


def ridge_predictions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, penalty: float) -> np.ndarray:
    """Ridge regression solved exactly in its dual form (n x n, n = training rows)."""
    mean_x, mean_y = train_x.mean(axis=0), train_y.mean(axis=0)
    centred = train_x - mean_x
    dual = np.linalg.solve(centred @ centred.T + penalty * np.eye(len(centred)), train_y - mean_y)
    return (test_x - mean_x) @ (centred.T @ dual) + mean_y


def best_linear_rmse(
    images: np.ndarray, keypoints: np.ndarray, train: np.ndarray, val: np.ndarray, seed: int
) -> tuple[float, float]:
    """Validation RMSE of ridge regression on pixels; the penalty is chosen on a
    20% split of the training rows, then refitted on all of them."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255.0
    y = keypoints.astype(np.float64)
    order = np.random.default_rng(seed).permutation(train)
    inner_val, inner_train = order[: len(order) // 5], order[len(order) // 5 :]
    penalties = (1.0, 10.0, 100.0, 1000.0)
    scores = [
        rmse_px(ridge_predictions(x[inner_train], y[inner_train], x[inner_val], p), y[inner_val]) for p in penalties
    ]
    penalty = penalties[int(np.argmin(scores))]
    return rmse_px(ridge_predictions(x[train], y[train], x[val], penalty), y[val]), penalty


def run(quick: bool, epochs: int | None = None, seed: int = 0) -> dict:
    """Trains both models; returns validation RMSE (pixels) of each and of the mean."""
    keras.utils.set_random_seed(seed)
    data = read_training(builtin_data().training)
    train, val = split_indices(data.keypoints, "complete", seed=seed)
    epochs = epochs or (8 if quick else 30)
    truth = data.keypoints[val]
    results: dict = {"train_rows": len(train), "validation_rows": len(val), "epochs": epochs}
    results["mean_rmse_px"] = rmse_px(np.nanmean(data.keypoints[train], axis=0)[None], truth)
    results["ridge_rmse_px"], results["ridge_penalty"] = best_linear_rmse(data.images, data.keypoints, train, val, seed)

    for build, learning_rate in ((cnn, 1e-3), (linear, 1e-4)):
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", jit_compile=False)
        train_ds = make_dataset(data.images[train], data.keypoints[train], batch_size=32, training=True, seed=seed)
        start = time.perf_counter()
        model.fit(train_ds, epochs=epochs, verbose=2)  # a line per epoch
        seconds = time.perf_counter() - start
        predicted = targets_to_pixels(
            model.predict(make_dataset(data.images[val], None, batch_size=256, training=False), verbose=0)
        )
        results[f"{model.name}_rmse_px"] = rmse_px(predicted, truth)
        results[f"{model.name}_train_s"] = seconds
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 epochs instead of 30")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    r = run(args.quick, args.epochs)
    print(
        f"complete protocol: {r['train_rows']} training / {r['validation_rows']} validation faces, {r['epochs']} epochs"
    )
    print(f"  validation RMSE, predict the mean shape:          {r['mean_rmse_px']:6.3f} px")
    print(f"  validation RMSE, best linear fit (ridge, l={r['ridge_penalty']:g}): {r['ridge_rmse_px']:6.3f} px")
    print(
        f"  validation RMSE, no-hidden-layer Keras network:  {r['linear_rmse_px']:6.3f} px  "
        f"({r['linear_train_s']:.0f} s)"
    )
    print(f"  validation RMSE, small CNN:                      {r['cnn_rmse_px']:6.3f} px  ({r['cnn_train_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
