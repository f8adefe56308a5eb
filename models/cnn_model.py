"""Facial keypoints with a convolutional network (Daniel Nouri's net2..net6).

Steps: imports, data, model definition, training, prediction and results.
Run:  python models/cnn_model.py [--epochs 10] [--data training.csv] [--dropout 0.5]
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
from fkd_ops.keypoints import targets_to_pixels

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="training.csv or .zip (default: the built-in synthetic faces)")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--rows", type=int, default=None, help="use only the first ROWS faces")
parser.add_argument("--dropout", type=float, default=0.0, help="0.5 gives net6's 0.1/0.2/0.3/0.5")
args = parser.parse_args()

# -- data ------------------------------------------------------------------------
faces = read_training(args.data or builtin_data().training)
images, keypoints = faces.images[: args.rows], faces.keypoints[: args.rows]
train_rows, val_rows = split_indices(keypoints, "masked", seed=0)
# Training batches are mirrored at random (keypoints remapped left <-> right) and
# normalized, in one fused op; validation batches are only normalized.
train = make_dataset(images[train_rows], keypoints[train_rows], batch_size=64, training=True, seed=0)
val = make_dataset(images[val_rows], keypoints[val_rows], batch_size=256, training=False)

# -- model definition ------------------------------------------------------------
layers = [keras.Input(shape=(96, 96, 1))]
for stage, (filters, kernel) in enumerate([(32, 3), (64, 2), (128, 2)], start=1):
    layers += [keras.layers.Conv2D(filters, kernel, activation="relu"), keras.layers.MaxPooling2D(2)]
    if args.dropout:
        layers.append(keras.layers.Dropout(args.dropout * stage / 5))
layers += [keras.layers.Flatten(), keras.layers.Dense(500, activation="relu")]
if args.dropout:
    layers.append(keras.layers.Dropout(args.dropout))
layers += [keras.layers.Dense(500, activation="relu"), keras.layers.Dense(30)]
model = keras.Sequential(layers)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=fkd_ops.MaskedRmseLoss(),
    metrics=[fkd_ops.MaskedRmseMetric()],
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
