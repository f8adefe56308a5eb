"""fkd_ops: custom TensorFlow ops (C++/CUDA) for Kaggle's Facial Keypoints Detection.

The package is built in layers, each importing only from those below it:

- :mod:`fkd_ops.keypoints`, :mod:`fkd_ops.files`: the keypoint layout, the
  pixel <-> target map, atomic file writes (plain Python);
- :mod:`fkd_ops.ops`: the compiled libraries, the op wrappers with their
  gradients, and their pure-TF twins (:mod:`fkd_ops.ops.reference`);
- :mod:`fkd_ops.data`: Kaggle's files, the synthetic faces, splits, the tf.data
  pipeline;
- :mod:`fkd_ops.keras`: loss, metric, layers, the three networks;
- :mod:`fkd_ops.train`: training runs, evaluation, pictures;
- :mod:`fkd_ops.cli`: the ``fkd-ops`` command.

Every public name is also here, as ``fkd_ops.X``, loaded on first use: importing
fkd_ops costs little, and TensorFlow is imported only when something needs it.
The Keras objects (layers, loss, metric) are registered as soon as Keras itself
is imported, so ``keras.models.load_model`` finds them after ``import fkd_ops``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

try:
    __version__ = _version("fkd_ops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

from fkd_ops.keypoints import (
    FLIP_PAIRS,
    IMAGE_SIZE,
    KEYPOINT_COLUMNS,
    KEYPOINT_NAMES,
    NUM_COORDINATES,
    NUM_KEYPOINTS,
    TARGET_CENTER,
    TARGET_SCALE,
    pixels_to_targets,
    targets_to_pixels,
)

# Public name -> the module that holds it (the module itself for "reference").
_LAZY: dict[str, str] = {
    "reference": "fkd_ops.ops.reference",
    "MaskedRmse": "fkd_ops.ops.reference",
    **dict.fromkeys(
        (
            "masked_rmse",
            "normalize_images",
            "flip_horizontal",
            "random_flip",
            "flip_normalize",
            "random_flip_normalize",
        ),
        "fkd_ops.ops.wrappers",
    ),
    **dict.fromkeys(("NORMALIZE_MODES", "IMAGE_NORMALIZATIONS"), "fkd_ops.ops.normalization"),
    **dict.fromkeys(
        (
            "KaggleFormatError",
            "TrainingSet",
            "TestSet",
            "read_training",
            "read_test",
            "read_lookup_table",
            "write_submission",
        ),
        "fkd_ops.data.kaggle_files",
    ),
    "builtin_data": "fkd_ops.data.builtin",
    "write_synthetic_kaggle": "fkd_ops.data.synthetic",
    **dict.fromkeys(("PROTOCOLS", "split_indices"), "fkd_ops.data.splits"),
    "make_dataset": "fkd_ops.data.pipeline",
    "MaskedRmseLoss": "fkd_ops.keras.losses",
    "MaskedRmseMetric": "fkd_ops.keras.metrics",
    **dict.fromkeys(("ImageNormalization", "KeypointRandomFlip", "TargetsToPixels"), "fkd_ops.keras.layers"),
    **dict.fromkeys(("NETWORK_NAMES", "NetworkOptions"), "fkd_ops.keras.options"),
    **dict.fromkeys(("build_network", "build_predictor"), "fkd_ops.keras.networks"),
    **dict.fromkeys(("TrainConfig", "TrainingError"), "fkd_ops.train.config"),
    **dict.fromkeys(("train", "TrainResult"), "fkd_ops.train.training"),
    "train_on_spark": "fkd_ops.train.spark",
    **dict.fromkeys(("tune", "SearchSpace", "Range", "TuneResult"), "fkd_ops.train.tune"),
}

__all__ = [
    "FLIP_PAIRS",
    "IMAGE_SIZE",
    "KEYPOINT_COLUMNS",
    "KEYPOINT_NAMES",
    "NUM_COORDINATES",
    "NUM_KEYPOINTS",
    "TARGET_CENTER",
    "TARGET_SCALE",
    "pixels_to_targets",
    "targets_to_pixels",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'fkd_ops' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "reference" else getattr(module, name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from fkd_ops.data.builtin import builtin_data  # noqa: F401
    from fkd_ops.data.kaggle_files import (  # noqa: F401
        KaggleFormatError,
        TestSet,
        TrainingSet,
        read_lookup_table,
        read_test,
        read_training,
        write_submission,
    )
    from fkd_ops.data.pipeline import make_dataset  # noqa: F401
    from fkd_ops.data.splits import PROTOCOLS, split_indices  # noqa: F401
    from fkd_ops.data.synthetic import write_synthetic_kaggle  # noqa: F401
    from fkd_ops.keras.layers import ImageNormalization, KeypointRandomFlip, TargetsToPixels  # noqa: F401
    from fkd_ops.keras.losses import MaskedRmseLoss  # noqa: F401
    from fkd_ops.keras.metrics import MaskedRmseMetric  # noqa: F401
    from fkd_ops.keras.networks import build_network, build_predictor  # noqa: F401
    from fkd_ops.keras.options import NETWORK_NAMES, NetworkOptions  # noqa: F401
    from fkd_ops.ops import reference  # noqa: F401
    from fkd_ops.ops.normalization import IMAGE_NORMALIZATIONS, NORMALIZE_MODES  # noqa: F401
    from fkd_ops.ops.reference import MaskedRmse  # noqa: F401
    from fkd_ops.ops.wrappers import (  # noqa: F401
        flip_horizontal,
        flip_normalize,
        masked_rmse,
        normalize_images,
        random_flip,
        random_flip_normalize,
    )
    from fkd_ops.train.config import TrainConfig, TrainingError  # noqa: F401
    from fkd_ops.train.spark import train_on_spark  # noqa: F401
    from fkd_ops.train.training import TrainResult, train  # noqa: F401
    from fkd_ops.train.tune import Range, SearchSpace, TuneResult, tune  # noqa: F401


# ---------------------------------------------------------------- Keras objects
# A saved model names fkd_ops' layers, loss and metric by their registered names
# ("fkd_ops>ImageNormalization", ...), which Keras looks up in its registry of
# custom objects: they must be registered before load_model runs, yet importing
# them here would import Keras and TensorFlow with fkd_ops. So they are
# registered the moment Keras is imported: now if it already is, else right
# after its own import finishes (a one-shot import hook).

_KERAS_OBJECT_MODULES = ("fkd_ops.keras.layers", "fkd_ops.keras.losses", "fkd_ops.keras.metrics")


def _register_keras_objects() -> None:
    try:
        for name in _KERAS_OBJECT_MODULES:
            importlib.import_module(name)
    except Exception as exc:  # never break the user's `import keras`
        warnings.warn(f"fkd_ops could not register its Keras objects: {exc}", RuntimeWarning, stacklevel=2)


class _RegisterAfterKerasImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `keras` with the other finders, and runs the registration once the
    module has executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # Probes come here too (importing TensorFlow looks Keras up with
        # importlib.util.find_spec, without importing it): step aside only for the
        # inner search, and leave for good once Keras has actually run.
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        module.__loader__ = module.__spec__.loader = self._inner
        self._inner.exec_module(module)
        _register_keras_objects()


if "keras" in sys.modules:
    _register_keras_objects()
else:
    sys.meta_path.insert(0, _RegisterAfterKerasImport())
