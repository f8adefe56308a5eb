"""A pure-Python oracle of Kaggle's Facial Keypoints Detection file formats.

Written from the format's definition (README "Kaggle files", cpp/py/kaggle_csv.h,
fkd_ops.data.kaggle_files.read_lookup_table's docstring), not from the readers:
slow, line by line, with regular expressions, so that a shortcut taken by the
fast readers (the native CSV parser, the lookup-table reader) shows as a
disagreement. Each function returns the arrays the file holds, or raises
:class:`OracleError` with the 1-based line and column of the first defect (line 1
is the header; column 0: the line as a whole).

The order in which defects are looked for is part of the format's definition,
because it decides which one is reported:

- training.csv / test.csv: the header first, then each data line in order; in a
  line, the fields from left to right, each first for a comma after it (none:
  "column c + 1 is missing"), then for its content; then the Image field
  (a comma in it: column 32/3, "too many fields"; then pixel by pixel; then the
  pixel count). A repeated ImageId is looked for only once every line parses.
- IdLookupTable.csv: the header, then each line in order: empty, then the field
  count, then RowId, ImageId, FeatureName, then a RowId seen on an earlier line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Kaggle's 30 keypoint columns in order, from the competition's own lookup table
# (image 1 asks for all of them), not from fkd_ops.
_LOOKUP = (Path(__file__).parent / "fixtures" / "IdLookupTable_excerpt.csv").read_text().splitlines()
COLUMNS = [line.split(",")[2] for line in _LOOKUP[1:] if line.split(",")[1] == "1"]
assert len(COLUMNS) == 30
TRAINING_HEADER = [*COLUMNS, "Image"]
TEST_HEADER = ["ImageId", "Image"]
PIXELS = 96 * 96
INT64_MAX = 2**63 - 1

# What std::from_chars (chars_format::general) takes as a decimal number: an
# optional minus, digits with an optional point (or a point then digits), an
# optional exponent. No plus sign, no spaces, no hex; inf and nan are refused.
NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Below this magnitude a double rounds to a finite float32; at or above it, to inf.
FLOAT32_OVERFLOW = float.fromhex("0x1.ffffffp+127")


class OracleError(Exception):
    def __init__(self, line: int, column: int, why: str):
        super().__init__(f"line {line}, column {column}: {why}")
        self.line, self.column, self.why = line, column, why

    @property
    def where(self) -> tuple[int, int]:
        return (self.line, self.column)


def _lines(data: bytes) -> list[bytes]:
    """The file's lines without terminators: each ends at a b"\\n" (one b"\\r"
    before it belongs to the terminator); the last may lack the b"\\n" (then a
    final b"\\r" is dropped too); nothing follows a final b"\\n"."""
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in pieces]


def _check_header(line: bytes, expected: list[str]) -> None:
    fields = line.decode("latin-1").split(",")
    for i, field in enumerate(fields):
        if i >= len(expected):
            raise OracleError(1, i + 1, "too many header fields")
        if field != expected[i]:
            raise OracleError(1, i + 1, f"header field {field!r} instead of {expected[i]!r}")
    if len(fields) < len(expected):
        raise OracleError(1, len(fields) + 1, "too few header fields")


def keypoint_value(text: str) -> float:
    """The float32 a keypoint field holds (NaN when empty); ValueError when the
    field is not a number or lies beyond float32."""
    if text == "":
        return float("nan")
    if not NUMBER.fullmatch(text):
        raise ValueError("not a number")
    value = float(text)  # correctly rounded; underflow gives (signed) zero
    if abs(value) >= FLOAT32_OVERFLOW:
        raise ValueError("beyond float32")
    return float(np.float32(value))


def _image(line_number: int, column: int, text: str) -> list[int]:
    if "," in text:
        raise OracleError(line_number, column + 1, "too many fields")
    if text == "":
        raise OracleError(line_number, column, "empty Image")
    pixels = []
    for token in text.split(" "):
        if not re.fullmatch(r"[0-9]{1,3}", token) or int(token) > 255:
            raise OracleError(line_number, column, f"bad pixel {token!r}")
        pixels.append(int(token))
    if len(pixels) != PIXELS:
        raise OracleError(line_number, column, f"{len(pixels)} pixels")
    return pixels


def _rows(data: bytes, header: list[str]):
    """(line number, fields before Image, Image text) of each data line, checked
    for empty lines and missing commas; the fields' content is left to the caller,
    which yields back the column number to blame."""
    if data == b"":
        raise OracleError(1, 0, "empty file")
    lines = _lines(data)
    _check_header(lines[0], header)
    for index, raw in enumerate(lines[1:]):
        yield index + 2, raw.decode("latin-1")


def _split_leading(line_number: int, text: str, count: int, check) -> tuple[list, str]:
    """The first `count` comma-terminated fields, each passed to check(column, text),
    and the rest of the line."""
    values = []
    rest = text
    for column in range(1, count + 1):
        if "," not in rest:
            raise OracleError(line_number, column + 1, "missing field")
        field, rest = rest.split(",", 1)
        values.append(check(column, field))
    return values, rest


def read_training(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """keypoints float32 [N, 30] and images uint8 [N, 96, 96] of a training.csv."""
    keypoints, images = [], []
    for line_number, text in _rows(data, TRAINING_HEADER):
        if text == "":
            raise OracleError(line_number, 0, "empty line")

        def check(column, field, line_number=line_number):
            try:
                return keypoint_value(field)
            except ValueError as exc:
                raise OracleError(line_number, column, str(exc)) from None

        values, rest = _split_leading(line_number, text, 30, check)
        keypoints.append(values)
        images.append(_image(line_number, 31, rest))
    return (
        np.array(keypoints, dtype=np.float32).reshape(-1, 30),
        np.array(images, dtype=np.uint8).reshape(-1, 96, 96),
    )


def read_test(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """image_ids int64 [N] and images uint8 [N, 96, 96] of a test.csv."""
    ids, images, first_line = [], [], {}
    for line_number, text in _rows(data, TEST_HEADER):
        if text == "":
            raise OracleError(line_number, 0, "empty line")

        def check(column, field, line_number=line_number):
            if not re.fullmatch(r"[0-9]+", field) or int(field) > INT64_MAX:
                raise OracleError(line_number, column, f"bad ImageId {field!r}")
            return int(field)

        (image_id,), rest = _split_leading(line_number, text, 1, check)
        ids.append(image_id)
        images.append(_image(line_number, 2, rest))
    for index, image_id in enumerate(ids):
        if image_id in first_line:
            raise OracleError(index + 2, 1, f"ImageId {image_id} repeated")
        first_line[image_id] = index
    return np.array(ids, dtype=np.int64), np.array(images, dtype=np.uint8).reshape(-1, 96, 96)


def read_lookup_table(data: bytes) -> list[tuple[int, int, str]]:
    """(RowId, ImageId, FeatureName) of each line of an IdLookupTable.csv. The
    header is RowId,ImageId,FeatureName, optionally with a fourth column
    Location (Kaggle's, whose rows leave it out): a line then has 3 or 4 fields,
    the fourth not read. Ids are decimal digits only, within int64."""
    if data == b"":
        raise OracleError(1, 0, "empty file")
    lines = [line.decode("latin-1") for line in _lines(data)]
    header = lines[0].split(",")
    expected = ["RowId", "ImageId", "FeatureName"]
    with_location = header[3:4] == ["Location"]
    _check_header(lines[0].encode("latin-1"), expected + ["Location"] * with_location)
    rows, seen = [], set()
    for index, text in enumerate(lines[1:]):
        line_number = index + 2
        if text == "":
            raise OracleError(line_number, 0, "empty line")
        fields = text.split(",")
        if len(fields) < 3:
            raise OracleError(line_number, len(fields) + 1, "missing field")
        allowed = 4 if with_location else 3
        if len(fields) > allowed:
            raise OracleError(line_number, allowed + 1, "too many fields")
        ids = []
        for column in (1, 2):
            text_id = fields[column - 1]
            if not re.fullmatch(r"[0-9]+", text_id) or int(text_id) > INT64_MAX:
                raise OracleError(line_number, column, f"bad id {text_id!r}")
            ids.append(int(text_id))
        if fields[2] not in COLUMNS:
            raise OracleError(line_number, 3, f"unknown feature {fields[2]!r}")
        if ids[0] in seen:
            raise OracleError(line_number, 1, f"RowId {ids[0]} repeated")
        seen.add(ids[0])
        rows.append((ids[0], ids[1], fields[2]))
    return rows
