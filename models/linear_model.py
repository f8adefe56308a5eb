"""Facial keypoints with no hidden layer: 9216 pixels -> 30 coordinates.

Steps: imports, data, model definition, training, prediction and results.
Run:  python models/linear_model.py [--epochs 20] [--data training.csv]
"""

# -- imports -------------------------------------------------------------------
import argparse

import keras
import numpy as np

import fkd_ops
from fkd_ops.data.builtin import builtin_data
from fkd_ops.data.kaggle_files import read_training
from fkd_ops.data.pipeline import make_dataset
from fkd_ops.data.splits import split_indices
from fkd_ops.keras.options import DEFAULT_LEARNING_RATES
from fkd_ops.keypoints import targets_to_pixels

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="training.csv or .zip (default: the built-in synthetic faces)")
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--rows", type=int, default=None, help="use only the first ROWS faces")
args = parser.parse_args()

# -- data ------------------------------------------------------------------------
# Kaggle's training.csv: 30 keypoint columns (NaN where missing) and the pixels.
faces = read_training(args.data or builtin_data().training)
images, keypoints = faces.images[: args.rows], faces.keypoints[: args.rows]
# The "masked" protocol keeps every row; the loss ignores the missing targets.
train_rows, val_rows = split_indices(keypoints, "masked", seed=0)
train = make_dataset(images[train_rows], keypoints[train_rows], batch_size=64, training=True, seed=0)
val = make_dataset(images[val_rows], keypoints[val_rows], batch_size=256, training=False)

# -- model definition ------------------------------------------------------------
# No hidden layer: one dense map from the 96 x 96 normalized pixels to the 30
# normalized coordinates (v - 48) / 48.
model = keras.Sequential(
    [
        keras.Input(shape=(96, 96, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(30),
    ]
)
model.compile(
    # The package's rate for this network (1e-4): at 1e-3 the 9216-input map overshoots.
    optimizer=keras.optimizers.Adam(DEFAULT_LEARNING_RATES[("adam", "linear")]),
    loss=fkd_ops.MaskedRmseLoss(),  # the custom op, NaN targets ignored
    metrics=[fkd_ops.MaskedRmseMetric()],  # exact RMSE in pixels
)

# -- training --------------------------------------------------------------------
truth = keypoints[val_rows]


def validation_rmse() -> float:
    """RMSE in pixels of the model's keypoints for the validation faces."""
    normalized = model.predict(make_dataset(images[val_rows], None, batch_size=256, training=False), verbose=0)
    return float(fkd_ops.masked_rmse(targets_to_pixels(normalized).astype(np.float32), truth).loss)


untrained = validation_rmse()
model.fit(train, validation_data=val, epochs=args.epochs, verbose=2)

# -- prediction and results ------------------------------------------------------
rmse = validation_rmse()
mean = float(
    fkd_ops.masked_rmse(
        np.broadcast_to(np.nanmean(keypoints[train_rows], axis=0), truth.shape).astype(np.float32), truth
    ).loss
)
print(f"validation RMSE: {rmse:.3f} px (untrained: {untrained:.3f} px, predicting the mean face: {mean:.3f} px)")
