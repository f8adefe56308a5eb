"""The ``fkd-ops`` command: train, evaluate, predict and show.

Every failure the user can cause (bad arguments, unreadable or malformed files,
a run folder in the way) ends with one line on stderr and a non-zero exit.
TensorFlow is imported only once a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

EXIT_USAGE = 2
EXIT_FAILURE = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _timestamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


# Epochs when --epochs is not given: the built-in main job trains all three
# networks in a few minutes on two cores.
DEFAULT_EPOCHS = {"linear": 15, "hidden": 15, "cnn": 4}


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=_existing_file, default=None,
                   help="training.csv or training.zip (default: the built-in synthetic set)")
    p.add_argument("--protocol", choices=("complete", "masked"), default=None,
                   help="complete: rows with all 30 values, 20%% held out; masked: all rows, "
                        "missing targets ignored by the loss (default: masked, or the run's)")
    p.add_argument("--seed", type=int, default=None, help="split, initialization and augmentation seed (default 0)")


def _configure_devices(cpu_replicas: int | None) -> None:
    if cpu_replicas and cpu_replicas > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)


def _train(args: argparse.Namespace) -> int:
    _configure_devices(args.cpu_replicas)
    from fkd_ops.networks import NETWORK_NAMES, NetworkOptions
    from fkd_ops.training import TrainConfig, load_training_set, summary_table, train

    names = list(NETWORK_NAMES) if args.model == "all" else [args.model]
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out: the folder of the run to continue")
    out = args.out or Path("runs") / _timestamp()
    options = NetworkOptions(optimizer=args.optimizer, learning_rate=args.learning_rate,
                             final_learning_rate=args.final_learning_rate, momentum=args.momentum,
                             l2=args.l2, dropout=args.dropout, hidden_units=args.hidden_units)
    seed = 0 if args.seed is None else args.seed
    data, source = load_training_set(args.data, seed=seed)
    print(f"data: {source}: {len(data.keypoints)} faces", flush=True)
    results = []
    for name in names:
        config = TrainConfig(
            network=name, out=out / name if args.model == "all" else out, data=args.data,
            protocol=args.protocol or "masked", epochs=args.epochs or DEFAULT_EPOCHS[name],
            batch_size=args.batch_size, seed=seed, flip_probability=0.0 if args.no_flip else args.flip_probability,
            normalization=args.normalization, early_stopping=args.early_stopping, strategy=args.strategy,
            options=options, verbose=args.verbose)
        print(f"== training {name} for {config.epochs} epochs -> {config.out}", flush=True)
        result = train(config, resume=args.resume, data=data, source=source)
        results.append(result)
        m = result.metrics
        print(f"{name}: validation RMSE {m['validation_rmse_px']:.3f} px (predict-the-mean "
              f"{m['mean_baseline_validation_rmse_px']:.3f} px), {m['wall_time_s']:.1f} s", flush=True)
    print()
    print(summary_table(results))
    if len(results) > 1:
        from fkd_ops.files import write_json
        from fkd_ops.plots import plot_learning_curves
        from fkd_ops.training import HISTORY_FILE, read_history

        write_json(out / "summary.json", [r.metrics for r in results])
        plot_learning_curves({r.config.network: read_history(r.out / HISTORY_FILE) for r in results},
                             out / "learning_curves.png",
                             baseline=results[0].metrics["mean_baseline_validation_rmse_px"],
                             title="Validation and training RMSE per epoch")
        print(f"\nsummary: {out / 'summary.json'}, curves: {out / 'learning_curves.png'}")
    return 0


class UsageError(Exception):
    """A combination of arguments that argparse cannot check by itself."""


def _load_run(path: Path) -> tuple[Any, dict[str, Any]]:
    """The network and the run's config from a run folder or a model.keras file."""
    import keras

    import fkd_ops  # noqa: F401  (registers the custom objects)
    from fkd_ops.training import CONFIG_FILE, MODEL_FILE

    folder = path if path.is_dir() else path.parent
    model_path = path / MODEL_FILE if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(f"no trained model at {model_path}")
    config_path = folder / CONFIG_FILE
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    return keras.models.load_model(model_path), config


def _evaluate(args: argparse.Namespace) -> int:
    from fkd_ops.evaluation import mean_baseline_px, predict_pixels, rmse_report
    from fkd_ops.splits import split_indices
    from fkd_ops.training import load_training_set

    model, config = _load_run(args.run)
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    data_path = args.data or (Path(config["data"]) if config.get("data") else None)
    data, source = load_training_set(data_path, seed=seed)
    protocol = args.protocol or config.get("protocol", "masked")
    train_idx, val_idx = split_indices(data.keypoints, protocol, seed=seed,
                                       validation_fraction=config.get("validation_fraction", 0.2))
    rows = val_idx if args.split == "validation" else np.concatenate([train_idx, val_idx])
    pred = predict_pixels(model, data.images[rows], normalization=config.get("normalization", "scale"))
    report = rmse_report(pred, data.keypoints[rows])
    baseline = mean_baseline_px(data.keypoints[train_idx], data.keypoints[rows])
    print(f"{source}, {args.split} rows of the {protocol} protocol: {len(rows)} faces, {report.count} coordinates")
    print(f"RMSE {report.rmse_px:.3f} px   (predict-the-mean {baseline:.3f} px)")
    for name, value in report.per_keypoint_px.items():
        print(f"  {name:<26} {'-' if value is None else f'{value:7.3f}'}")
    if args.json:
        from fkd_ops.files import write_json

        write_json(args.json, {**report.as_dict(), "mean_baseline_rmse_px": baseline, "rows": int(len(rows)),
                               "split": args.split, "protocol": protocol, "data": source})
    return 0


def _predict(args: argparse.Namespace) -> int:
    from fkd_ops.evaluation import predict_pixels
    from fkd_ops.kaggle_files import read_lookup_table, read_test, write_submission

    model, config = _load_run(args.run)
    test_path, lookup_path = args.test, args.lookup
    if test_path is None or lookup_path is None:
        if (test_path is None) != (lookup_path is None):
            raise UsageError("give both --test and --lookup, or neither (the built-in test set)")
        from fkd_ops.builtin_data import builtin_data

        files = builtin_data(seed=config.get("seed", 0))
        test_path, lookup_path = files.test, files.lookup_table
    test = read_test(test_path)
    pred = predict_pixels(model, test.images, normalization=config.get("normalization", "scale"))
    rows = write_submission(args.out, pred, test.image_ids, read_lookup_table(lookup_path))
    print(f"wrote {rows} rows for {len(test.image_ids)} test faces to {args.out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from fkd_ops.plots import plot_faces
    from fkd_ops.training import load_training_set

    data, source = load_training_set(args.data, seed=0 if args.seed is None else args.seed)
    rows = np.arange(min(args.count, len(data.keypoints)))
    predictions = None
    if args.run is not None:
        from fkd_ops.evaluation import predict_pixels

        model, config = _load_run(args.run)
        predictions = predict_pixels(model, data.images[rows], normalization=config.get("normalization", "scale"))
    plot_faces(data.images[rows], args.out, truth=data.keypoints[rows], predictions=predictions,
               titles=[f"row {i}" for i in rows])
    print(f"wrote {len(rows)} faces from {source} to {args.out}")
    return 0


def _demo(_args: argparse.Namespace) -> int:
    import fkd_ops

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, fkd_ops.IMAGE_SIZE, fkd_ops.IMAGE_SIZE), dtype=np.uint8)
    keypoints = rng.uniform(0, fkd_ops.IMAGE_SIZE, (8, fkd_ops.NUM_COORDINATES)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    x, kp, flipped = fkd_ops.random_flip_normalize(images, keypoints, seed=[0, 1])
    print(f"flipped {int(np.sum(flipped))} of 8 faces; images in [{float(np.min(x)):.3f}, {float(np.max(x)):.3f}]")
    # Score a constant guess (the image centre) against the flipped keypoints: the
    # loss skips the missing ones. (Scoring the flipped keypoints against the
    # originals would give NaN: a point missing in one slot lands in its partner's,
    # and a NaN prediction at a present target propagates, by design.)
    centre = np.full(keypoints.shape, fkd_ops.IMAGE_SIZE / 2, dtype=np.float32)
    result = fkd_ops.masked_rmse(centre, kp)
    print(f"masked RMSE of an image-centre guess: {float(result.loss):.3f} px "
          f"over {int(result.count)} present coordinates")
    _, back = fkd_ops.flip_horizontal(x, kp, flipped)
    # 96 - (96 - x) rounds in float32: equal to within an ulp of 96, NaN in place.
    same = np.allclose(np.asarray(back), keypoints, rtol=0, atol=1e-5, equal_nan=True)
    print(f"flipping the flipped faces back restores the keypoints: {same}")
    return 0 if same else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fkd-ops", description="Facial keypoint detection with the fkd_ops custom TensorFlow ops.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one network or all three",
                       description="Train on the built-in synthetic set or Kaggle's training.csv/.zip.")
    t.add_argument("--model", choices=("linear", "hidden", "cnn", "all"), default="all")
    _add_data_args(t)
    t.add_argument("--epochs", type=_positive_int, default=None,
                   help=f"epochs (default per network: {DEFAULT_EPOCHS})")
    t.add_argument("--batch-size", type=_positive_int, default=64, help="global batch size (default 64)")
    t.add_argument("--out", type=Path, default=None, help="run folder (default runs/<timestamp>)")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
                   help="stop when validation RMSE has not improved for PATIENCE epochs (keeps the best weights)")
    t.add_argument("--optimizer", choices=("adam", "nesterov"), default="adam")
    t.add_argument("--learning-rate", type=_number, default=None,
                   help="initial learning rate (default per network and optimizer, e.g. Adam: 1e-4 for the "
                        "dense nets, 1e-3 for the CNN)")
    t.add_argument("--final-learning-rate", type=_number, default=None,
                   help="decay the learning rate linearly to this value over the run")
    t.add_argument("--momentum", type=_number, default=0.9, help="Nesterov momentum (default 0.9)")
    t.add_argument("--l2", type=_number, default=0.0, help="L2 penalty on the weights")
    t.add_argument("--dropout", type=_number, default=0.0, help="dropout rate of the dense layers")
    t.add_argument("--hidden-units", type=_positive_int, default=100, help="units of the hidden network (100)")
    t.add_argument("--flip-probability", type=_number, default=0.5, help="training-time horizontal flips")
    t.add_argument("--no-flip", action="store_true", help="no flip augmentation")
    t.add_argument("--normalization", choices=("scale", "standardize"), default="scale")
    t.add_argument("--strategy", choices=("default", "mirrored", "multiworker"), default="default",
                   help="tf.distribute strategy: mirrored over local devices, multiworker from TF_CONFIG")
    t.add_argument("--cpu-replicas", type=_positive_int, default=None,
                   help="split the CPU into this many logical devices (to try --strategy mirrored without GPUs)")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras progress: 0 silent, 1 bar, 2 line per epoch")
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="RMSE of a trained network, per keypoint and against the mean")
    e.add_argument("run", type=Path, help="run folder (or its model.keras)")
    _add_data_args(e)
    e.add_argument("--split", choices=("validation", "all"), default="validation")
    e.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    e.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="write a Kaggle submission from test.csv and IdLookupTable.csv")
    p.add_argument("run", type=Path, help="run folder (or its model.keras)")
    p.add_argument("--test", type=_existing_file, default=None, help="test.csv or test.zip (default: built-in)")
    p.add_argument("--lookup", type=_existing_file, default=None, help="IdLookupTable.csv (default: built-in)")
    p.add_argument("--out", type=Path, default=Path("submission.csv"))
    p.set_defaults(func=_predict)

    s = sub.add_parser("show", help="draw faces with their keypoints (and a run's predictions) to a PNG")
    _add_data_args(s)
    s.add_argument("--run", type=Path, default=None, help="also draw this run's predictions")
    s.add_argument("--count", type=_positive_int, default=16)
    s.add_argument("--out", type=Path, default=Path("faces.png"))
    s.set_defaults(func=_show)

    d = sub.add_parser("demo", help="run the ops on a random batch and check a flip round trip")
    d.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"fkd-ops {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nfkd-ops {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, ImportError, RuntimeError) as exc:
        # What a user can cause: unreadable or malformed files, bad settings, a run
        # folder in the way, a TensorFlow mismatch. Anything else is a bug and keeps
        # its traceback (FKD_OPS_TRACEBACK=1 shows these ones too).
        if os.environ.get("FKD_OPS_TRACEBACK"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fkd-ops {args.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
