"""The ``fkd-ops`` command: train, tune, evaluate, predict and show.

Every failure the user can cause (bad arguments, unreadable or malformed files,
a run folder in the way) ends with one line on stderr and a non-zero exit.
TensorFlow is imported only once a command that needs it runs, so ``--help`` is
instant, and its start-up lines (absl's pre-init notice, CUDA stubs, cuInit,
CPU-feature notices) are kept off the terminal unless ``--verbose`` asks.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fkd_ops.data.splits import PROTOCOLS
from fkd_ops.keras.options import NETWORK_NAMES, OPTIMIZERS, NetworkOptions
from fkd_ops.ops.normalization import IMAGE_NORMALIZATIONS
from fkd_ops.train.config import CONFIG_FILE, DEFAULT_EPOCHS, METRICS_FILE, SPARK_STRATEGY, STRATEGIES, TrainConfig
from fkd_ops.train.spark import DEFAULT_MASTER
from fkd_ops.train.tune import TUNABLE

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


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give the file itself")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _timestamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=_existing_file,
        default=None,
        help="training.csv or training.zip (default: the built-in synthetic set)",
    )
    p.add_argument(
        "--data-seed",
        type=_non_negative_int,
        default=None,
        help="which built-in synthetic set: each seed is another set of faces, generated once and "
        "cached (default 0, or the run's); not used with --data",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="complete: rows with all 30 values, 20%% held out; masked: all rows, "
        "missing targets ignored by the loss (default: masked, or the run's)",
    )
    p.add_argument(
        "--seed",
        type=_non_negative_int,
        default=None,
        help="seed of the train/validation split, the initial weights, the shuffle order and the "
        "flips (default 0, or the run's)",
    )


def _add_training_args(p: argparse.ArgumentParser) -> None:
    """The options of one training run, shared by train and tune."""
    _add_data_args(p)
    p.add_argument("--epochs", type=_positive_int, default=None, help=f"epochs (default per network: {DEFAULT_EPOCHS})")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="global batch size (default 64)")
    p.add_argument(
        "--early-stopping",
        type=_positive_int,
        default=None,
        metavar="PATIENCE",
        help="stop when validation RMSE has not improved for PATIENCE epochs (keeps the best weights)",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument(
        "--learning-rate",
        type=_number,
        default=None,
        help="initial learning rate (default per network and optimizer, e.g. Adam: 1e-4 for the "
        "dense nets, 1e-3 for the CNN)",
    )
    p.add_argument(
        "--final-learning-rate",
        type=_number,
        default=None,
        help="decay the learning rate linearly to this value over the run",
    )
    p.add_argument("--momentum", type=_number, default=0.9, help="Nesterov momentum (default 0.9)")
    p.add_argument("--l2", type=_number, default=0.0, help="L2 penalty on the weights")
    p.add_argument("--dropout", type=_number, default=0.0, help="dropout rate of the dense layers")
    p.add_argument("--hidden-units", type=_positive_int, default=100, help="units of the hidden network (100)")
    p.add_argument("--flip-probability", type=_number, default=0.5, help="training-time horizontal flips")
    p.add_argument("--no-flip", action="store_true", help="no flip augmentation")
    p.add_argument("--normalization", choices=IMAGE_NORMALIZATIONS, default="scale")


def _add_spark_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--spark-master",
        default=DEFAULT_MASTER,
        metavar="URL",
        help=f"Spark master: {DEFAULT_MASTER} (default: Spark embedded here, a task slot per core), local[N], "
        "or a cluster's spark://, yarn or k8s:// URL",
    )
    p.add_argument(
        "--spark-conf",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="a Spark setting, e.g. spark.executor.memory=4g (repeatable)",
    )
    p.add_argument(
        "--spark-task-cpus",
        type=_positive_int,
        default=1,
        help="cores per Spark task; TensorFlow in each task uses as many threads (default 1)",
    )


def _configure_devices(cpu_replicas: int | None) -> None:
    if cpu_replicas and cpu_replicas > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)


def _network_options(args: argparse.Namespace) -> NetworkOptions:
    return NetworkOptions(
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        final_learning_rate=args.final_learning_rate,
        momentum=args.momentum,
        l2=args.l2,
        dropout=args.dropout,
        hidden_units=args.hidden_units,
    )


def _train_config(args: argparse.Namespace, name: str, out: Path, strategy: str = "default") -> TrainConfig:
    """The TrainConfig of ``name`` from the training options that train and tune share."""
    return TrainConfig(
        network=name,
        out=out,
        data=args.data,
        protocol=args.protocol or "masked",
        epochs=args.epochs or DEFAULT_EPOCHS[name],
        batch_size=args.batch_size,
        seed=0 if args.seed is None else args.seed,
        data_seed=0 if args.data_seed is None else args.data_seed,
        flip_probability=0.0 if args.no_flip else args.flip_probability,
        normalization=args.normalization,
        early_stopping=args.early_stopping,
        strategy=strategy,
        options=_network_options(args),
        verbose=getattr(args, "progress", 1),
    )


def _train(args: argparse.Namespace) -> int:
    _configure_devices(args.cpu_replicas)
    from fkd_ops.data.builtin import load_training_set
    from fkd_ops.train.training import TrainResult, summary_table, train

    names = list(NETWORK_NAMES) if args.model == "all" else [args.model]
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out: the folder of the run to continue")
    on_spark = args.strategy == SPARK_STRATEGY
    if not on_spark and args.spark_workers is not None:
        raise UsageError("--spark-workers goes with --strategy spark")
    if on_spark:
        from fkd_ops.train.spark import ensure_spark

        ensure_spark()
    out = args.out or Path("runs") / _timestamp()
    data, source = load_training_set(args.data, data_seed=0 if args.data_seed is None else args.data_seed)
    print(f"data: {source}: {len(data.keypoints)} faces", flush=True)
    results = []
    for name in names:
        # A Spark run is a multi-worker run whose workers are Spark barrier tasks.
        strategy = "multiworker" if on_spark else args.strategy
        config = _train_config(args, name, out / name if args.model == "all" else out, strategy)
        resume = args.resume
        if args.resume and args.model == "all":
            # The networks train one after another: an interrupted --model all has
            # finished runs before the one it stopped in, and none after it.
            if (config.out / METRICS_FILE).is_file():
                print(f"== {name} had finished: {config.out}", flush=True)
                results.append(TrainResult(config, json.loads((config.out / METRICS_FILE).read_text())))
                continue
            resume = (config.out / CONFIG_FILE).is_file()
        print(f"== training {name} for {config.epochs} epochs -> {config.out}", flush=True)
        if on_spark:
            from fkd_ops.train.spark import train_on_spark

            result = train_on_spark(
                config,
                args.spark_workers or 2,
                resume=resume,
                data=data,
                source=source,
                say=functools.partial(print, flush=True),
                **_spark_args(args),
            )
        else:
            result = train(config, resume=resume, data=data, source=source)
        results.append(result)
        m = result.metrics
        print(
            f"{name}: validation RMSE {m['validation_rmse_px']:.3f} px (predict-the-mean "
            f"{m['mean_baseline_validation_rmse_px']:.3f} px), {m['wall_time_s']:.1f} s",
            flush=True,
        )
    print()
    print(summary_table(results))
    if len(results) > 1:
        from fkd_ops.files import write_json
        from fkd_ops.train.config import HISTORY_FILE
        from fkd_ops.train.plots import plot_learning_curves
        from fkd_ops.train.training import read_history

        write_json(out / "summary.json", [r.metrics for r in results])
        plot_learning_curves(
            {r.config.network: read_history(r.out / HISTORY_FILE) for r in results},
            out / "learning_curves.png",
            baseline=results[0].metrics["mean_baseline_validation_rmse_px"],
            title="Validation and training RMSE per epoch",
        )
        print(f"\nsummary: {out / 'summary.json'}, curves: {out / 'learning_curves.png'}")
    return 0


def _spark_args(args: argparse.Namespace) -> dict[str, Any]:
    from fkd_ops.train.spark import parse_spark_conf

    return {"master": args.spark_master, "conf": parse_spark_conf(args.spark_conf), "task_cpus": args.spark_task_cpus}


def _tune(args: argparse.Namespace) -> int:
    from fkd_ops.train.tune import SearchSpace, parse_grid, parse_ranges, tune, tune_table

    if args.resume and args.out is None:
        raise UsageError("--resume needs --out: the folder of the tune to continue")
    space = SearchSpace(
        grid=parse_grid(args.grid or []),
        ranges=parse_ranges(args.range or []),
        trials=args.trials,
        seed=args.search_seed,
    )
    out = args.out or Path("runs") / f"tune-{_timestamp()}"
    result = tune(
        _train_config(args, args.model, out),
        space,
        out,
        resume=args.resume,
        say=functools.partial(print, flush=True),
        **_spark_args(args),
    )
    print()
    print(tune_table(result.trials))
    done = [t for t in result.trials if t.status == "done"]
    print(f"\n{len(done)} of {len(result.trials)} trials finished; tune.json, curves and trial folders in {result.out}")
    if result.best is None:
        print("no trial finished: see the errors above and each trial's trial.log", file=sys.stderr)
        return EXIT_FAILURE
    m = result.best.metrics
    print(
        f"best: {result.best.id}, validation RMSE {m['validation_rmse_px']:.3f} px "
        f"(predict-the-mean {m['mean_baseline_validation_rmse_px']:.3f} px); train it with:\n  {result.best_command}"
    )
    return 0 if len(done) == len(result.trials) else EXIT_FAILURE


class UsageError(Exception):
    """A combination of arguments that argparse cannot check by itself."""


class _Reported(Exception):
    """A failure already reported on stderr (one line per cause)."""


def _load_run(path: Path) -> tuple[Any, dict[str, Any]]:
    """The trained model and the run's config, from a run folder (its
    predictor.keras, which runs of every fkd_ops version have written) or from a
    .keras file in one (a predictor, or a bare network: earlier versions also
    wrote model.keras)."""
    import keras

    from fkd_ops.train.config import CONFIG_FILE, PREDICTOR_FILE

    folder = path if path.is_dir() else path.parent
    model_path = path / PREDICTOR_FILE if path.is_dir() else path
    if not model_path.is_file():
        raise FileNotFoundError(f"no trained model at {model_path}")
    config_path = folder / CONFIG_FILE
    config: dict[str, Any] = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{config_path}: cannot read the run's settings: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{config_path}: not a run's settings (a JSON object)")
    return keras.models.load_model(model_path), config


def _evaluate(args: argparse.Namespace) -> int:
    from fkd_ops.data.builtin import load_training_set
    from fkd_ops.data.splits import split_indices
    from fkd_ops.train.evaluation import mean_baseline_px, predict_pixels, rmse_report

    model, config = _load_run(args.run)
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    data_seed = args.data_seed if args.data_seed is not None else config.get("data_seed", 0)
    data_path = args.data or (Path(config["data"]) if config.get("data") else None)
    data, source = load_training_set(data_path, data_seed=data_seed)
    protocol = args.protocol or config.get("protocol", "masked")
    train_idx, val_idx = split_indices(
        data.keypoints, protocol, seed=seed, validation_fraction=config.get("validation_fraction", 0.2)
    )
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

        write_json(
            args.json,
            {
                **report.as_dict(),
                "mean_baseline_rmse_px": baseline,
                "rows": int(len(rows)),
                "split": args.split,
                "protocol": protocol,
                "data": source,
            },
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.images is not None:
        return _predict_images(args)
    from fkd_ops.data.kaggle_files import read_lookup_table, read_test, write_submission
    from fkd_ops.train.evaluation import predict_pixels

    model, config = _load_run(args.run)
    test_path, lookup_path = args.test, args.lookup
    if test_path is None or lookup_path is None:
        if (test_path is None) != (lookup_path is None):
            raise UsageError("give both --test and --lookup, or neither (the built-in test set)")
        from fkd_ops.data.builtin import builtin_data

        files = builtin_data(seed=config.get("data_seed", 0))
        test_path, lookup_path = files.test, files.lookup_table
    test = read_test(test_path)
    pred = predict_pixels(model, test.images, normalization=config.get("normalization", "scale"))
    out = args.out or Path("submission.csv")
    rows = write_submission(out, pred, test.image_ids, read_lookup_table(lookup_path))
    print(f"wrote {rows} rows for {len(test.image_ids)} test faces to {out}")
    return 0


def _load_faces(args: argparse.Namespace, *, limit: int | None = None, display: bool = False):
    """The images of --images as 96 x 96 faces; every unusable file gets its own
    line on stderr before the error that stops the command."""
    from fkd_ops.data.builtin import _ProgressLine
    from fkd_ops.data.images import ImageErrors, find_images, load_faces

    files = find_images(args.images)
    if limit is not None and len(files) > limit:
        print(f"showing the first {limit} of {len(files)} images (--count)")
        files = files[:limit]
    # Big photos take a while to decode: show progress for many of them.
    progress = _ProgressLine("reading images") if len(files) >= 100 else None
    try:
        return load_faces(files, display=display, progress=progress)
    except ImageErrors as exc:
        for error in exc.errors:
            print(f"fkd-ops {args.command}: error: {error}", file=sys.stderr)
        if len(files) > 1:
            print(f"fkd-ops {args.command}: error: {str(exc).splitlines()[0]}; nothing written", file=sys.stderr)
        raise _Reported from None


def _predict_on_faces(run: Path, faces: np.ndarray) -> np.ndarray:
    """A run's keypoints [N, 30] (pixels of the 96 x 96 faces) for uint8 faces [N, 96, 96]."""
    from fkd_ops.train.evaluation import predict_pixels

    model, config = _load_run(run)
    return predict_pixels(model, faces, normalization=config.get("normalization", "scale"))


def _predict_images(args: argparse.Namespace) -> int:
    from fkd_ops.data.images import write_image_keypoints

    if args.test is not None or args.lookup is not None:
        raise UsageError(
            "--images writes keypoints per image; --test and --lookup write a submission: give one or the other"
        )
    images = _load_faces(args)
    points = images.to_images(_predict_on_faces(args.run, images.faces))
    out = args.out or Path("keypoints.csv")
    write_image_keypoints(out, images.frames, points)
    print(f"wrote the keypoints of {len(images.frames)} images, in each image's own pixels, to {out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    if args.images is not None:
        return _show_images(args)
    from fkd_ops.data.builtin import load_training_set
    from fkd_ops.train.plots import plot_faces

    data, source = load_training_set(args.data, data_seed=0 if args.data_seed is None else args.data_seed)
    rows = np.arange(min(args.count, len(data.keypoints)))
    predictions = None
    if args.run is not None:
        predictions = _predict_on_faces(args.run, data.images[rows])
    plot_faces(
        data.images[rows],
        args.out,
        truth=data.keypoints[rows],
        predictions=predictions,
        titles=[f"row {i}" for i in rows],
    )
    print(f"wrote {len(rows)} faces from {source} to {args.out}")
    return 0


def _show_images(args: argparse.Namespace) -> int:
    from fkd_ops.train.plots import plot_faces

    if args.run is None:
        raise UsageError("--images needs --run: the run whose keypoints to draw on them")
    if args.data is not None:
        raise UsageError("--images and --data are two different sources: give one or the other")
    images = _load_faces(args, limit=args.count, display=True)
    points = images.to_images(_predict_on_faces(args.run, images.faces))
    plot_faces(
        images.displays,
        args.out,
        predictions=points,
        sizes=[(f.width, f.height) for f in images.frames],
        titles=[f.path.name for f in images.frames],
    )
    print(f"wrote {len(images.frames)} images with {args.run}'s keypoints to {args.out}")
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from fkd_ops.keypoints import IMAGE_SIZE, NUM_COORDINATES, TARGET_CENTER
    from fkd_ops.ops.wrappers import flip_horizontal, masked_rmse, random_flip_normalize

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    keypoints = rng.uniform(0, IMAGE_SIZE, (8, NUM_COORDINATES)).astype(np.float32)
    keypoints[rng.random(keypoints.shape) < 0.5] = np.nan
    x, kp, flipped = random_flip_normalize(images, keypoints, seed=[0, 1])
    print(f"flipped {int(np.sum(flipped))} of 8 faces; images in [{float(np.min(x)):.3f}, {float(np.max(x)):.3f}]")
    # Score a constant guess (the image centre) against the flipped keypoints: the
    # loss skips the missing ones. (Scoring the flipped keypoints against the
    # originals would give NaN: a point missing in one slot lands in its partner's,
    # and a NaN prediction at a present target propagates, by design.)
    centre = np.full(keypoints.shape, TARGET_CENTER, dtype=np.float32)
    result = masked_rmse(centre, kp)
    print(
        f"masked RMSE of an image-centre guess: {float(result.loss):.3f} px "
        f"over {int(result.count)} present coordinates"
    )
    _, back = flip_horizontal(x, kp, flipped)
    # 96 - (96 - x) rounds in float32: equal to within an ulp of 96, NaN in place.
    same = np.allclose(np.asarray(back), keypoints, rtol=0, atol=1e-5, equal_nan=True)
    print(f"flipping the flipped faces back restores the keypoints: {same}")
    return 0 if same else 1


_IMAGES_HELP = (
    "Images are made upright (EXIF), grey, cut to their centred square and resized to 96 x 96; "
    "keypoints are given in each image's own pixels."
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fkd-ops", description="Facial keypoint detection with the fkd_ops custom TensorFlow ops.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's start-up and information logs (hidden by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, func, *, tensorflow: bool = True, **kwargs) -> argparse.ArgumentParser:
        c = sub.add_parser(name, parents=[common], **kwargs)
        c.set_defaults(func=func, tensorflow=tensorflow)
        return c

    t = command(
        "train",
        _train,
        help="train one network or all three",
        description="Train on the built-in synthetic set or Kaggle's training.csv/.zip.",
    )
    t.add_argument("--model", choices=(*NETWORK_NAMES, "all"), default="all")
    _add_training_args(t)
    t.add_argument("--out", type=Path, default=None, help="run folder (default runs/<timestamp>)")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument(
        "--strategy",
        choices=(*STRATEGIES, SPARK_STRATEGY),
        default="default",
        help="tf.distribute strategy: mirrored over local devices, multiworker from TF_CONFIG, spark: "
        "multiworker over Spark barrier tasks",
    )
    t.add_argument(
        "--spark-workers",
        type=_positive_int,
        default=None,
        help="with --strategy spark: TensorFlow workers, one Spark task each, started together (default 2)",
    )
    _add_spark_args(t)
    t.add_argument(
        "--cpu-replicas",
        type=_positive_int,
        default=None,
        help="split the CPU into this many logical devices (to try --strategy mirrored without GPUs)",
    )
    t.add_argument(
        "--progress", type=int, choices=(0, 1, 2), default=1, help="Keras progress: 0 silent, 1 bar, 2 line per epoch"
    )

    # The driver only plans, broadcasts and gathers: TensorFlow runs in Spark's workers.
    u = command(
        "tune",
        _tune,
        tensorflow=False,
        help="hyperparameter search on Spark: one trial per configuration, sorted by validation RMSE",
        description="Train one network with many settings, each trial a Spark task on the same split, and "
        "rank them by validation RMSE. Every option of train can be fixed here; --grid and --range vary them.",
    )
    u.add_argument("--model", choices=NETWORK_NAMES, required=True)
    _add_training_args(u)
    u.add_argument(
        "--grid",
        nargs="+",
        action="extend",
        metavar="NAME=V1,V2",
        help="values to try, e.g. learning_rate=1e-3,3e-4 dropout=0,0.3 (every combination, or drawn with "
        f"--trials); NAME is one of: {', '.join(TUNABLE)}",
    )
    u.add_argument(
        "--range",
        nargs="+",
        action="extend",
        metavar="NAME=LOW:HIGH[:log]",
        help="an interval to draw from (uniformly, or in its logarithm with :log); needs --trials",
    )
    u.add_argument("--trials", type=_positive_int, default=None, help="random search: this many trials")
    u.add_argument("--search-seed", type=_non_negative_int, default=0, help="seed of the random search (default 0)")
    u.add_argument("--out", type=Path, default=None, help="tune folder (default runs/tune-<timestamp>)")
    u.add_argument(
        "--resume", action="store_true", help="continue the interrupted tune in --out (finished trials are kept)"
    )
    _add_spark_args(u)

    e = command("evaluate", _evaluate, help="RMSE of a trained network, per keypoint and against the mean")
    e.add_argument("run", type=Path, help="run folder (or its predictor.keras)")
    _add_data_args(e)
    e.add_argument("--split", choices=("validation", "all"), default="validation")
    e.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")

    p = command(
        "predict",
        _predict,
        help="write a Kaggle submission from test.csv and IdLookupTable.csv, or the keypoints of your own images",
        description=f"Kaggle submission, or with --images the keypoints of each image. {_IMAGES_HELP}",
    )
    p.add_argument("run", type=Path, help="run folder (or its predictor.keras)")
    p.add_argument("--test", type=_existing_file, default=None, help="test.csv or test.zip (default: built-in)")
    p.add_argument("--lookup", type=_existing_file, default=None, help="IdLookupTable.csv (default: built-in)")
    p.add_argument(
        "--images",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="PNG or JPEG files, or folders of them: write one CSV row per image (path, width, height, the 30 "
        "coordinates in that image's pixels) instead of a submission",
    )
    p.add_argument("--out", type=Path, default=None, help="submission.csv, or keypoints.csv with --images (default)")

    # Without --run, show only reads files and draws: no TensorFlow.
    s = command(
        "show",
        _show,
        tensorflow=False,
        help="draw faces with their keypoints (and a run's predictions) to a PNG",
        description=f"Faces of a data set with their keypoints, or with --run and --images your own images with the "
        f"run's keypoints. {_IMAGES_HELP}",
    )
    _add_data_args(s)
    s.add_argument("--run", type=Path, default=None, help="also draw this run's predictions")
    s.add_argument(
        "--images",
        type=Path,
        nargs="+",
        default=None,
        metavar="PATH",
        help="draw --run's keypoints on these PNG or JPEG files (or folders of them) instead of a data set",
    )
    s.add_argument("--count", type=_positive_int, default=16, help="faces or images to draw (default 16)")
    s.add_argument("--out", type=Path, default=Path("faces.png"))

    command("demo", _demo, help="run the ops on a random batch and check a flip round trip")
    return parser


def _start_tensorflow(verbose: bool) -> None:
    """Imports TensorFlow and finds its devices with the process's stderr (fd 2)
    sent to a scratch file, unless ``verbose``: what TensorFlow's C++ prints then
    (absl's pre-init notice, CUDA stub and cuInit lines, CPU-feature notices)
    never reaches the terminal. Should the import fail, it is shown after all."""
    if verbose or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA's start-up lines come here, not at import
        except BaseException:
            os.dup2(saved, 2)
            scratch.seek(0)
            sys.stderr.write(scratch.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # TensorFlow's C++ information and warning logs (level 2 keeps its errors).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if args.verbose else "2")
    try:
        if args.tensorflow or getattr(args, "run", None) is not None:
            _start_tensorflow(args.verbose)
        return args.func(args)
    except UsageError as exc:
        print(f"fkd-ops {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _Reported:
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"\nfkd-ops {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, ImportError, RuntimeError, MemoryError) as exc:
        # What a user can cause: unreadable or malformed files, bad settings, a run
        # folder in the way, a TensorFlow mismatch, data too big for this machine.
        # Anything else is a bug and keeps its traceback (FKD_OPS_TRACEBACK=1 shows
        # these ones too).
        if os.environ.get("FKD_OPS_TRACEBACK"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fkd-ops {args.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
