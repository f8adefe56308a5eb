"""Facial keypoints with one hidden layer, in the classic graph-and-session style.

A tf.compat.v1 graph with placeholders fed at run time, variables, and a session
whose run fetches the loss and the training step; the fkd_ops ops (fused flip +
normalize, masked RMSE) are nodes of that graph like any core op.
Steps: imports, data, model definition, training, prediction and results.
Run:  python models/hidden_layer_model.py [--epochs 20] [--data training.csv]
"""

# -- imports -------------------------------------------------------------------
import argparse

import numpy as np
import tensorflow as tf

import fkd_ops
from fkd_ops.data.builtin import builtin_data
from fkd_ops.data.kaggle_files import read_training
from fkd_ops.data.splits import split_indices

v1 = tf.compat.v1
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", help="training.csv or .zip (default: the built-in synthetic faces)")
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--rows", type=int, default=None, help="use only the first ROWS faces")
parser.add_argument("--hidden", type=int, default=100, help="hidden units (Nouri's net1: 100)")
args = parser.parse_args()

# -- data ------------------------------------------------------------------------
faces = read_training(args.data or builtin_data().training)
images, keypoints = faces.images[: args.rows], faces.keypoints[: args.rows]
train_rows, val_rows = split_indices(keypoints, "masked", seed=0)
rng = np.random.default_rng(0)

# -- model definition ------------------------------------------------------------
graph = tf.Graph()
with graph.as_default():
    v1.set_random_seed(0)
    pixels = v1.placeholder(tf.uint8, [None, 96, 96], name="pixels")  # raw faces
    truth = v1.placeholder(tf.float32, [None, 30], name="keypoints")  # pixels, NaN = missing
    flip = v1.placeholder_with_default(tf.zeros_like(truth[:, 0], tf.bool), [None], name="flip")
    # Mirror the chosen faces (remapping left/right keypoints) and scale to [0, 1].
    x, kp = fkd_ops.flip_normalize(pixels, truth, flip)
    targets = fkd_ops.pixels_to_targets(kp)

    w1 = v1.get_variable("w1", [96 * 96, args.hidden], initializer=v1.glorot_uniform_initializer())
    b1 = v1.get_variable("b1", [args.hidden], initializer=v1.zeros_initializer())
    w2 = v1.get_variable("w2", [args.hidden, 30], initializer=v1.glorot_uniform_initializer())
    b2 = v1.get_variable("b2", [30], initializer=v1.zeros_initializer())
    hidden = tf.nn.relu(tf.matmul(tf.reshape(x, [-1, 96 * 96]), w1) + b1)
    outputs = tf.matmul(hidden, w2) + b2

    loss = fkd_ops.masked_rmse(outputs, targets).loss  # NaN targets ignored
    step = v1.train.MomentumOptimizer(0.01, momentum=0.9, use_nesterov=True).minimize(loss)
    predicted_pixels = fkd_ops.targets_to_pixels(outputs)
    init = v1.global_variables_initializer()

# -- training --------------------------------------------------------------------
with v1.Session(graph=graph) as session:
    session.run(init)
    validation_feed = {pixels: images[val_rows], truth: keypoints[val_rows]}
    untrained_predicted = session.run(predicted_pixels, feed_dict=validation_feed)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(train_rows)
        losses = []
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            _, batch_loss = session.run(
                [step, loss],
                feed_dict={pixels: images[batch], truth: keypoints[batch], flip: rng.random(len(batch)) < 0.5},
            )
            losses.append(batch_loss)
        loss_px = fkd_ops.TARGET_SCALE * np.mean(losses)
        print(f"epoch {epoch}: training loss {np.mean(losses):.4f} (about {loss_px:.2f} px)")

    # -- prediction and results --------------------------------------------------
    predicted = session.run(predicted_pixels, feed_dict=validation_feed)

truth_val = keypoints[val_rows]
rmse = float(fkd_ops.masked_rmse(predicted, truth_val).loss)
untrained = float(fkd_ops.masked_rmse(untrained_predicted, truth_val).loss)
mean = float(
    fkd_ops.masked_rmse(
        np.broadcast_to(np.nanmean(keypoints[train_rows], axis=0), truth_val.shape).astype(np.float32), truth_val
    ).loss
)
print(f"validation RMSE: {rmse:.3f} px (untrained: {untrained:.3f} px, predicting the mean face: {mean:.3f} px)")
