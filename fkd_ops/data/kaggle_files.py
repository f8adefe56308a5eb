"""Kaggle's Facial Keypoints Detection files: reading training.csv / test.csv
(or the zips Kaggle ships them in), the lookup table, and writing submissions.

The CSV parsing is native (``fkd_ops._native``, C++ over the file's bytes on
every core, with the GIL released): strict and all-or-nothing. Any deviation
from the format raises :class:`KaggleFormatError` naming the file, line and
column; nothing half-read is ever returned.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fkd_ops.files import atomic_write
from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_COLUMNS, NUM_COORDINATES

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

LOOKUP_COLUMNS: tuple[str, ...] = ("RowId", "ImageId", "FeatureName")
"""The columns of IdLookupTable.csv that a submission needs (Kaggle's file also
has an empty ``Location`` column)."""

SUBMISSION_HEADER = "RowId,Location"


@dataclass(frozen=True)
class _KnownFile:
    name: str
    size: int
    sha256: str


# The original competition files (see the data notes): recognised by size first,
# so only a file of exactly the right size is hashed.
KNOWN_FILES: tuple[_KnownFile, ...] = (
    _KnownFile(
        "training.csv (Kaggle original, CRLF)",
        238_064_810,
        "6521c1d8ad036e3304ccb50967834ab6a942bc1b84bcb7dca10e348522ed480a",
    ),
    _KnownFile(
        "training.csv (Kaggle original, LF copy)",
        238_057_760,
        "17b016bb90a7c51d5a8f9b2753937dfef963e9aaa808d2ea7c2bf7dd593f856b",
    ),
    _KnownFile(
        "test.csv (Kaggle original, CRLF)",
        59_822_141,
        "1600eed743e240d30969a8b4e3f48eed0dca2a6bccc9d20f7838640540c4adba",
    ),
    _KnownFile(
        "test.csv (Kaggle original, LF copy)",
        59_820_357,
        "614157f66580277f9b0175cb9f91abbed56600c843d67b7c1320ccc832bc542b",
    ),
)
_KNOWN_SIZES = {f.size for f in KNOWN_FILES}


class KaggleFormatError(ValueError):
    """A Kaggle file that does not follow the competition's format.

    Attributes: ``path`` (the file, ``archive.zip:member.csv`` inside a zip),
    ``line`` (1-based, 1 = header; 0 when not tied to a line), ``column``
    (1-based field number; 0 when not tied to one field), ``field`` (the
    column's name, or "") and ``reason``.
    """

    def __init__(self, path: str, reason: str, *, line: int = 0, column: int = 0, field: str = ""):
        self.path, self.reason, self.line, self.column, self.field = path, reason, line, column, field
        where = path
        if line:
            where += f": line {line}"
        if column:
            where += f", column {column}" + (f" ({field})" if field else "")
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # picklable, e.g. across multiprocessing
        return (_rebuild_error, (self.path, self.reason, self.line, self.column, self.field))


def _rebuild_error(path: str, reason: str, line: int, column: int, field: str) -> KaggleFormatError:
    return KaggleFormatError(path, reason, line=line, column=column, field=field)


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """The contents of training.csv."""

    keypoints: np.ndarray
    """float32 [N, 30] in pixels, KEYPOINT_COLUMNS order; NaN = missing."""
    images: np.ndarray
    """uint8 [N, 96, 96]."""

    def __len__(self) -> int:
        return len(self.keypoints)


@dataclass(frozen=True, eq=False)
class TestSet:
    """The contents of test.csv."""

    __test__ = False  # not a pytest test class, whatever its name says

    image_ids: np.ndarray
    """int64 [N], Kaggle's ImageId of each row."""
    images: np.ndarray
    """uint8 [N, 96, 96]."""

    def __len__(self) -> int:
        return len(self.image_ids)


# ---------------------------------------------------------------- reading


def read_training(path: PathLike, *, num_threads: int | None = None) -> TrainingSet:
    """Reads Kaggle's training.csv, or training.zip holding it.

    Args:
      path: a .csv file (CRLF or LF line ends) or a .zip holding one .csv.
      num_threads: parser threads; None uses every core this process may run on.

    Raises:
      KaggleFormatError: the file breaks the format (wrong header, short or long
        row, non-numeric keypoint, pixel outside 0..255, pixel count other than
        9216, truncated last line, empty file); the message names file, line
        and column.
      FileNotFoundError: no such file.
    """
    from fkd_ops.ops.libraries import native

    with _file_bytes(path) as (name, data):
        keypoints, images = _parse(name, native().read_kaggle_training, data, num_threads)
    return TrainingSet(keypoints=keypoints, images=images)


def read_test(path: PathLike, *, num_threads: int | None = None) -> TestSet:
    """Reads Kaggle's test.csv (columns ImageId, Image), or test.zip holding it.

    Errors as for :func:`read_training`; a repeated ImageId is also an error.
    """
    from fkd_ops.ops.libraries import native

    with _file_bytes(path) as (name, data):
        image_ids, images = _parse(name, native().read_kaggle_test, data, num_threads)
    if len(image_ids):
        unique, first = np.unique(image_ids, return_index=True)
        if len(unique) != len(image_ids):
            repeated = np.setdiff1d(np.arange(len(image_ids)), first)[0]
            raise KaggleFormatError(
                name,
                f"ImageId {image_ids[repeated]} appears more than once",
                line=int(repeated) + 2,
                column=1,
                field="ImageId",
            )
    return TestSet(image_ids=image_ids, images=images)


def _parse(name: str, parser, data, num_threads: int | None):
    from fkd_ops.ops.libraries import native

    try:
        return parser(data, _usable_cores() if num_threads is None else int(num_threads))
    except native().KaggleCsvError as exc:
        reason, line, column, field = exc.args
        raise KaggleFormatError(name, reason, line=line, column=column, field=field) from None


def _usable_cores() -> int:
    # The cores this process may run on (a container or taskset may allow fewer
    # than the machine has, which is what C++ would see).
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _file_bytes(path: PathLike) -> Iterator[tuple[str, Any]]:
    """Yields (display name, bytes-like) for a .csv (memory-mapped, no copy) or
    the single .csv inside a .zip (inflated by zipfile)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if zipfile.is_zipfile(path):
        name, data = _zip_member(path)
        _recognise(name, len(data), lambda: hashlib.sha256(data).hexdigest(), (*_file_key(path), name))
        yield name, data
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size == 0:
            yield str(path), b""
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            _recognise(str(path), size, lambda: _sha256_of(mapped), _file_key(path))
            yield str(path), mapped


def _zip_member(path: Path) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            csvs = [
                i for i in members if i.filename.lower().endswith(".csv") and not Path(i.filename).name.startswith("._")
            ]  # macOS resource forks
            if len(csvs) != 1:
                listed = ", ".join(i.filename for i in members) or "nothing"
                raise KaggleFormatError(str(path), f"expected a zip holding one .csv file, found {listed}")
            member = csvs[0]
            return f"{path}:{member.filename}", archive.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise KaggleFormatError(str(path), f"cannot read the zip archive: {exc}") from exc


def _sha256_of(data) -> str:
    digest = hashlib.sha256()
    view = memoryview(data)
    step = 1 << 24
    for start in range(0, len(view), step):
        digest.update(view[start : start + step])
    view.release()
    return digest.hexdigest()


# sha256 of files already hashed in this process, by (path, size, mtime): a
# second read of the same unchanged file does not hash it again.
_DIGESTS: dict[tuple, str] = {}


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _recognise(name: str, size: int, sha256, key: tuple | None = None) -> str | None:
    """Logs whether the file is one of the original competition files; the
    hash is only computed when the size already matches one of them."""
    if size not in _KNOWN_SIZES:
        log.debug("%s: %d bytes, not the size of an original Kaggle file", name, size)
        return None
    digest = _DIGESTS.get(key) if key else None
    if digest is None:
        digest = sha256()
        if key:
            _DIGESTS[key] = digest
    for known in KNOWN_FILES:
        if known.size == size and known.sha256 == digest:
            log.info("%s is the original %s (sha256 %s...)", name, known.name, digest[:12])
            return known.name
    log.info("%s has the size of an original Kaggle file but not its content (sha256 %s)", name, digest)
    return None


def recognise_original(path: PathLike) -> str | None:
    """The name of the original Kaggle file that ``path`` (a .csv or .zip) is, or None."""
    with _file_bytes(path) as (name, data):
        return _recognise(name, len(data), lambda: _sha256_of(data))


def read_lookup_table(path: PathLike) -> pd.DataFrame:
    """Reads IdLookupTable.csv: a DataFrame with int64 ``RowId`` and ``ImageId``
    and str ``FeatureName``, in file order.

    Raises KaggleFormatError for a wrong header, a missing or non-integer id, a
    repeated RowId or an unknown feature name (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = str(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise KaggleFormatError(name, f"not a readable CSV: {exc}") from exc
    header = tuple(table.columns[:3])
    if header != LOOKUP_COLUMNS:
        raise KaggleFormatError(
            name, f"the header starts {','.join(map(str, header))!r}, expected 'RowId,ImageId,FeatureName'", line=1
        )
    out: dict[str, Any] = {}
    for column_number, column in enumerate(("RowId", "ImageId"), start=1):
        text = table[column]
        values = pd.to_numeric(text, errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() | (values.to_numpy() % 1 != 0))
        if len(bad):
            raise KaggleFormatError(
                name,
                f"{text.iloc[bad[0]]!r} is not an integer {column}",
                line=int(bad[0]) + 2,
                column=column_number,
                field=column,
            )
        out[column] = values.to_numpy().astype(np.int64)
    features = table["FeatureName"].to_numpy(dtype=object)
    unknown = np.flatnonzero(~np.isin(features, KEYPOINT_COLUMNS))
    if len(unknown):
        raise KaggleFormatError(
            name,
            f"unknown FeatureName {features[unknown[0]]!r}",
            line=int(unknown[0]) + 2,
            column=3,
            field="FeatureName",
        )
    out["FeatureName"] = features.astype(str)
    _, first = np.unique(out["RowId"], return_index=True)
    if len(first) != len(table):
        repeated = np.setdiff1d(np.arange(len(table)), first)[0]
        raise KaggleFormatError(
            name,
            f"RowId {out['RowId'][repeated]} appears more than once",
            line=int(repeated) + 2,
            column=1,
            field="RowId",
        )
    return pd.DataFrame(out)


# ---------------------------------------------------------------- writing


def submission_values(predictions, image_ids, lookup_table: pd.DataFrame) -> np.ndarray:
    """The Location of each lookup row: the prediction for its ImageId and
    FeatureName, clipped to the image [0, 96]. float64 [len(lookup_table)].

    Raises ValueError naming the first ImageId or FeatureName that the
    predictions lack, or a requested prediction that is not finite.
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    image_ids = np.asarray(image_ids)
    if predictions.ndim != 2 or predictions.shape[1] != NUM_COORDINATES:
        raise ValueError(f"predictions must have shape [N, {NUM_COORDINATES}], got {predictions.shape}")
    if image_ids.shape != (predictions.shape[0],):
        raise ValueError(
            f"image_ids must have shape ({predictions.shape[0]},) to match predictions, got {image_ids.shape}"
        )
    if not np.issubdtype(image_ids.dtype, np.integer):
        raise ValueError(f"image_ids must be integers, got dtype {image_ids.dtype}")
    if len(np.unique(image_ids)) != len(image_ids):
        raise ValueError("image_ids holds a repeated ImageId")
    missing_columns = [c for c in LOOKUP_COLUMNS if c not in lookup_table.columns]
    if missing_columns:
        raise ValueError(f"lookup_table lacks the column(s) {missing_columns}")
    rows = pd.Index(image_ids).get_indexer(lookup_table["ImageId"].to_numpy())
    if (rows < 0).any():
        first = int(np.flatnonzero(rows < 0)[0])
        lacking = np.unique(lookup_table["ImageId"].to_numpy()[rows < 0])
        raise ValueError(
            f"the predictions lack ImageId {lookup_table['ImageId'].iloc[first]} "
            f"(lookup RowId {lookup_table['RowId'].iloc[first]}); "
            f"{len(lacking)} requested image(s) have no prediction"
        )
    columns = pd.Index(KEYPOINT_COLUMNS).get_indexer(lookup_table["FeatureName"].to_numpy())
    if (columns < 0).any():
        first = int(np.flatnonzero(columns < 0)[0])
        raise ValueError(
            f"the predictions lack FeatureName {lookup_table['FeatureName'].iloc[first]!r} "
            f"(lookup RowId {lookup_table['RowId'].iloc[first]}): not a Kaggle keypoint column"
        )
    values = predictions[rows, columns]
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the prediction for ImageId {lookup_table['ImageId'].iloc[first]}, "
            f"{lookup_table['FeatureName'].iloc[first]} is {values[first]} "
            f"(lookup RowId {lookup_table['RowId'].iloc[first]})"
        )
    return np.clip(values, 0.0, float(IMAGE_SIZE))


def write_submission(path: PathLike, predictions, image_ids, lookup_table: pd.DataFrame) -> int:
    """Writes a Kaggle submission ``RowId,Location``: one row per lookup row, in
    the table's order.

    Args:
      path: the output .csv; written to a temporary file beside it, then renamed.
      predictions: float [N, 30] in pixels, KEYPOINT_COLUMNS order, one row per image.
      image_ids: int [N], the ImageId of each prediction row.
      lookup_table: from :func:`read_lookup_table`.

    Returns:
      The number of rows written (header excluded).
    """
    values = submission_values(predictions, image_ids, lookup_table)
    row_ids = lookup_table["RowId"].to_numpy()
    with atomic_write(path, "w", encoding="ascii", newline="\n") as out:
        out.write(SUBMISSION_HEADER + "\n")
        out.writelines(f"{r},{v:.6g}\n" for r, v in zip(row_ids.tolist(), values.tolist()))
    return len(values)
