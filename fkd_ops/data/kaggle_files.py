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
import lzma
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fkd_ops.files import atomic_write
from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_COLUMNS, NUM_COORDINATES

log = logging.getLogger(__name__)

PathLike = str | os.PathLike

TRAINING_HEADER: tuple[str, ...] = (*KEYPOINT_COLUMNS, "Image")
"""The columns of training.csv, in file order."""

TEST_HEADER: tuple[str, ...] = ("ImageId", "Image")
"""The columns of test.csv, in file order."""

HEADERS: dict[str, tuple[str, ...]] = {"training": TRAINING_HEADER, "test": TEST_HEADER}

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
        row, non-numeric keypoint or one beyond float32, pixel outside 0..255,
        pixel count other than 9216, truncated last line, empty file), the zip
        cannot be read, or the file changed while it was read; the message names
        file, line and column.
      FileNotFoundError, IsADirectoryError: no such file; a folder.
      MemoryError: the arrays do not fit (memory is bounded by the file's size:
        at most half of it for the arrays, and the file's bytes while reading).
      RuntimeError: a parser thread could not start (ask for fewer threads).
    """
    _, keypoints, images = _read_csv(path, "training", num_threads)
    return TrainingSet(keypoints=keypoints, images=images)


def read_test(path: PathLike, *, num_threads: int | None = None) -> TestSet:
    """Reads Kaggle's test.csv (columns ImageId, Image), or test.zip holding it.

    Errors as for :func:`read_training`; a repeated ImageId is also an error.
    """
    name, image_ids, images = _read_csv(path, "test", num_threads)
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


def _read_csv(path: PathLike, kind: str, num_threads: int | None) -> tuple[str, np.ndarray, np.ndarray]:
    """(display name, first array, images) of a training or test file, .csv or .zip.

    A .csv is read by the native reader with pread, not mapped (a file truncated
    meanwhile must give an error, not SIGBUS), and its size and mtime are compared
    before and after, so a file that changed while it was read is an error rather
    than a mix of two versions."""
    from fkd_ops.ops.libraries import native

    path = _existing_file(path)
    threads = _usable_cores() if num_threads is None else int(num_threads)
    if zipfile.is_zipfile(path):
        name, data = _zip_member(path, kind)
        parser = native().read_kaggle_training if kind == "training" else native().read_kaggle_test
        first, images = _parse(name, lambda: parser(data, HEADERS[kind], threads))
        _recognise(name, len(data), lambda: _sha256_of(data), (*_file_key(path), name))
        return name, first, images
    name = str(path)
    with open(path, "rb") as f:
        before = os.fstat(f.fileno())
        read = native().read_kaggle_file
        first, images = _parse(name, lambda: read(f.fileno(), before.st_size, kind, HEADERS[kind], threads))
        after = os.fstat(f.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise KaggleFormatError(
                name,
                f"it changed while it was read ({before.st_size} bytes when opened, {after.st_size} now): "
                "is another program writing it? Read it again once it is complete",
            )
        key = (str(path.resolve()), before.st_size, before.st_mtime_ns)
        _recognise(name, before.st_size, lambda: _sha256_of_stream(os.fdopen(os.dup(f.fileno()), "rb")), key)
    return name, first, images


def _existing_file(path: PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file: give the .csv or .zip itself")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def _parse(name: str, parse: Callable[[], Any]) -> Any:
    """Runs a native parse, naming the file in whatever it raises."""
    from fkd_ops.ops.libraries import native

    try:
        return parse()
    except native().KaggleCsvError as exc:
        reason, line, column, field = exc.args
        raise KaggleFormatError(name, reason, line=line, column=column, field=field) from None
    except MemoryError as exc:
        raise MemoryError(f"{name}: {exc}") from None
    except RuntimeError as exc:  # a parser thread could not start
        raise RuntimeError(f"{name}: {exc}") from None
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), name) from None


def _usable_cores() -> int:
    # The cores this process may run on (a container or taskset may allow fewer
    # than the machine has, which is what C++ would see).
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# How much of a zip member is inflated at a time.
_ZIP_PIECE = 1 << 20
# Bytes past which a first line without a line break cannot be a header (ours are
# under 1 KB): it is checked, and refused, before more is inflated.
_MAX_HEADER_BYTES = 1 << 16
# Python's zipfile raises all of these for damaged or unsupported archives (zlib,
# lzma and bz2 errors for damaged streams, RuntimeError for a password,
# UnicodeDecodeError for a mangled name, struct.error for mangled records).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    RuntimeError,
    UnicodeDecodeError,
    struct.error,
)


@contextlib.contextmanager
def _zip_errors(path: Path) -> Iterator[None]:
    """Turns whatever zipfile raises for a damaged or unsupported archive into a
    KaggleFormatError naming it."""
    try:
        yield
    except KaggleFormatError:
        raise
    except _ZIP_ERRORS as exc:
        raise KaggleFormatError(str(path), f"cannot read the zip archive: {exc}") from exc


def _the_csv(archive: zipfile.ZipFile, path: Path) -> zipfile.ZipInfo:
    """The archive's one .csv member, which must not be encrypted."""
    members = [i for i in archive.infolist() if not i.is_dir()]
    csvs = [
        i for i in members if i.filename.lower().endswith(".csv") and not Path(i.filename).name.startswith("._")
    ]  # macOS resource forks
    if len(csvs) != 1:
        listed = ", ".join(i.filename for i in members) or "nothing"
        raise KaggleFormatError(str(path), f"expected a zip holding one .csv file, found {listed}")
    if csvs[0].flag_bits & 0x1:
        raise KaggleFormatError(
            f"{path}:{csvs[0].filename}", "the file is encrypted: unzip it with its password and give the .csv"
        )
    return csvs[0]


def _zip_member(path: Path, kind: str) -> tuple[str, memoryview]:
    """(display name, bytes) of the single .csv inside a .zip.

    The member is inflated a piece at a time into a buffer of its declared size
    (zipfile never yields more; pages not yet written take no memory): its header
    is checked as soon as it is in (or once _MAX_HEADER_BYTES have come without a
    line break), and inflating stops at the first line too
    short to be a row (the parser then reports that line, or an earlier one).
    So a wrong file or a zip bomb of short lines costs a few pieces, not the
    member's size. Every failure is a KaggleFormatError naming the archive."""
    from fkd_ops.ops.libraries import native

    with _zip_errors(path), zipfile.ZipFile(path) as archive:
        member = _the_csv(archive, path)
        name = f"{path}:{member.filename}"
        try:
            buffer = np.empty(member.file_size, np.uint8)
        except MemoryError:
            raise KaggleFormatError(
                name, f"it says it holds {member.file_size / 1e9:.1f} GB, more than this machine can allocate"
            ) from None
        min_row = native().kaggle_min_row_bytes(kind)
        parser = native().read_kaggle_training if kind == "training" else native().read_kaggle_test

        def check_header(end: int) -> None:
            """Parses buffer[:end], which holds the header line (and no row): a
            wrong header is a KaggleFormatError."""
            _parse(name, lambda: parser(memoryview(buffer)[:end], HEADERS[kind], 1))

        filled, line_end = 0, -1  # bytes inflated; where the last complete line ended
        with archive.open(member) as stream:
            while piece := stream.read(_ZIP_PIECE):
                buffer[filled : filled + len(piece)] = np.frombuffer(piece, np.uint8)
                at = piece.find(b"\n")
                while at >= 0:
                    end = filled + at
                    if line_end < 0:
                        check_header(end + 1)
                    elif end - line_end - 1 < min_row:
                        return name, memoryview(buffer)[: end + 1]
                    line_end = end
                    at = piece.find(b"\n", at + 1)
                filled += len(piece)
                if line_end < 0 and filled >= _MAX_HEADER_BYTES:
                    # No line break yet, and already longer than any header: check it
                    # now rather than after inflating the rest (a member of one
                    # endless line would otherwise be inflated whole).
                    check_header(filled)
        return name, memoryview(buffer)[:filled]


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
    path = _existing_file(path)
    if zipfile.is_zipfile(path):
        with _zip_errors(path), zipfile.ZipFile(path) as archive:
            member = _the_csv(archive, path)
            return _recognise(
                f"{path}:{member.filename}", member.file_size, lambda: _sha256_of_stream(archive.open(member))
            )
    return _recognise(str(path), path.stat().st_size, lambda: _sha256_of_stream(open(path, "rb")))


def _sha256_of_stream(stream) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def read_lookup_table(path: PathLike) -> pd.DataFrame:
    """Reads IdLookupTable.csv: a DataFrame with int64 ``RowId`` and ``ImageId``
    and str ``FeatureName``, in file order.

    The format, strictly: a header ``RowId,ImageId,FeatureName``, optionally with
    a fourth column ``Location`` (Kaggle's file has it, and leaves it out of its
    rows: a row then has 3 or 4 fields, the fourth not read); lines end in "\n"
    or "\r\n", the last may lack it. Ids are decimal digits within int64;
    FeatureName is one of the 30 keypoint columns; a RowId may appear once.

    Raises:
      KaggleFormatError: naming the line and column of the first defect: in each
        line, an empty line, then the field count, then RowId, ImageId,
        FeatureName, then a RowId repeated from an earlier line.
      FileNotFoundError, IsADirectoryError: no such file; a folder.
    """
    path = _existing_file(path)
    name = str(path)
    data = path.read_bytes()
    if not data:
        raise KaggleFormatError(name, "the file is empty, expected the header 'RowId,ImageId,FeatureName'", line=1)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    # latin-1 maps every byte to one character, so columns and quoted text stay
    # byte for byte (the file itself is ASCII).
    lines = [(line[:-1] if line.endswith(b"\r") else line).decode("latin-1") for line in lines]

    header = lines[0].split(",")
    expected = list(LOOKUP_COLUMNS) + (["Location"] if header[3:4] == ["Location"] else [])
    for column, field in enumerate(header, start=1):
        if column > len(expected) or field != expected[column - 1]:
            raise KaggleFormatError(
                name,
                f"the header has {field!r} in column {column}, expected {','.join(expected)!r}",
                line=1,
                column=column,
            )
    if len(header) < len(expected):
        raise KaggleFormatError(
            name,
            f"the header has {len(header)} fields, expected {','.join(expected)!r}",
            line=1,
            column=len(header) + 1,
        )
    most_fields = len(expected)

    row_ids: list[int] = []
    image_ids: list[int] = []
    features: list[str] = []
    first_line: dict[int, int] = {}
    known = set(KEYPOINT_COLUMNS)
    for number, text in enumerate(lines[1:], start=2):
        if not text:
            raise KaggleFormatError(name, "the line is empty, expected RowId,ImageId,FeatureName", line=number)
        fields = text.split(",")
        if len(fields) < 3:
            raise KaggleFormatError(
                name,
                f"missing: the line has {len(fields)} field{'s' if len(fields) > 1 else ''}, expected 3",
                line=number,
                column=len(fields) + 1,
                field=LOOKUP_COLUMNS[len(fields)],
            )
        if len(fields) > most_fields:
            raise KaggleFormatError(
                name,
                f"the line has {len(fields)} fields, expected {most_fields}",
                line=number,
                column=most_fields + 1,
            )
        ids = []
        for column, field in ((1, "RowId"), (2, "ImageId")):
            value = _lookup_id(name, fields[column - 1], number, column, field)
            ids.append(value)
        if fields[2] not in known:
            raise KaggleFormatError(
                name, f"unknown FeatureName {fields[2]!r}", line=number, column=3, field="FeatureName"
            )
        if ids[0] in first_line:
            raise KaggleFormatError(
                name,
                f"RowId {ids[0]} appears more than once (first on line {first_line[ids[0]]})",
                line=number,
                column=1,
                field="RowId",
            )
        first_line[ids[0]] = number
        row_ids.append(ids[0])
        image_ids.append(ids[1])
        features.append(fields[2])
    return pd.DataFrame(
        {
            "RowId": np.array(row_ids, dtype=np.int64),
            "ImageId": np.array(image_ids, dtype=np.int64),
            "FeatureName": np.array(features, dtype=object).astype(str),
        }
    )


_INT64_MAX = np.iinfo(np.int64).max


def _lookup_id(name: str, text: str, line: int, column: int, field: str) -> int:
    """A RowId or ImageId: decimal digits, within int64."""
    if not (text.isascii() and text.isdigit()):
        shown = repr(text[:40] + ("..." if len(text) > 40 else ""))
        raise KaggleFormatError(
            name, f"{shown} is not a non-negative integer {field}", line=line, column=column, field=field
        )
    digits = text.lstrip("0")
    # Length first: int() refuses strings of over 4300 digits.
    value = int(digits) if 0 < len(digits) <= 19 else (0 if not digits else _INT64_MAX + 1)
    if value > _INT64_MAX:
        raise KaggleFormatError(
            name,
            f"{text[:40]!r} is out of range for {'an' if field == 'ImageId' else 'a'} {field} (at most {_INT64_MAX})",
            line=line,
            column=column,
            field=field,
        )
    return value


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
