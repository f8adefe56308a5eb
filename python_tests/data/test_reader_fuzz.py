"""Fuzzing the Kaggle readers against a pure-Python oracle of the format.

Hypothesis draws a small valid file (rows, number spellings, line ends) and a
list of mutations (a field or a pixel replaced by a hostile token, bytes
inserted, deleted or replaced, a truncation, a line removed or doubled); the
bytes go to fkd_ops' reader and to python_tests/kaggle_oracle.py, written
independently from the format's definition. They must agree: the same arrays,
or an error on the same line and column. The CSV reader is also run on the same
bytes from memory (the zip path) and must agree with itself. Zips get
single-byte corruptions: the same arrays or a KaggleFormatError, never another
exception.

Budget: FKD_FUZZ_EXAMPLES cases per reader (default 150; four readers), drawn
the same every run (the suite's derandomized hypothesis profile), so CI is
repeatable; FKD_HYPOTHESIS_PROFILE=fkd-explore draws fresh ones. Under
FKD_FUZZ_EXAMPLES=150 the module takes about 30 s on two cores.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import kaggle_oracle as oracle
import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from fkd_ops.data.kaggle_files import HEADERS, KaggleFormatError, read_lookup_table, read_test, read_training
from fkd_ops.ops.libraries import native

EXAMPLES = int(os.environ.get("FKD_FUZZ_EXAMPLES", "150"))
fuzz_settings = settings(max_examples=EXAMPLES)

# Hostile spellings of a keypoint: the edges of float32 and double, the
# spellings std::from_chars and Python's float() disagree on, separators.
KEYPOINT_TOKENS = [
    "",
    "0",
    "-0",
    "48.25",
    "1e39",
    "-1e39",
    "1e308",
    "3.4028234e38",
    "3.4028235e38",
    "3.4028236e38",
    "1e-400",
    "-1e-400",
    "1e-50",
    "1.4e-45",
    "7e-46",
    "1e400",
    "1e99999999999999999999",
    "0." + "0" * 400 + "1",
    "9" * 400,
    "inf",
    "-inf",
    "nan",
    "Infinity",
    "1e",
    "1e+",
    "1e-",
    ".5",
    "5.",
    ".",
    "-",
    "-.5e-3",
    "+1",
    " 1",
    "1 ",
    "0x10",
    "1_0",
    "\u0661",
    "1,5",
    "00012.5000",
    "1E5",
    "1e05",
]
PIXEL_TOKENS = ["0", "255", "256", "-1", "00", "000", "0000", "0255", "1.5", "", " ", "a", "999", "+1", "1\r"]
ID_TOKENS = [
    "0",
    "7",
    "-1",
    "+1",
    "",
    "1.0",
    "1e3",
    " 1",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "00000000000000000000001",
]
FEATURES = oracle.COLUMNS
RAW_INSERTS = [b",", b" ", b"\n", b"\r", b"\r\n", b"\n\n", b"\x00", b"\xff", b"\t", b'"']


def numeric_text(alphabet: str = "0123456789.-+eE", max_size: int = 10):
    return st.text(alphabet=alphabet, max_size=max_size)


# A mutation: (kind, line, position, payload). Lines and positions are reduced
# modulo what the file holds, so every draw means something; line 0 is the
# header, drawn rarely (most defects worth finding are in the rows), and byte
# positions fall in a row's keypoints half the time.
line_index = st.sampled_from([1, 2, 3, 4, 5] * 3 + [0])
byte_position = st.one_of(st.integers(0, 400), st.integers(0, 2**16))
keypoint_change = st.tuples(
    st.just("keypoint"),
    line_index,
    st.integers(0, 29),
    st.one_of(st.sampled_from(KEYPOINT_TOKENS), numeric_text()),
)
pixel_change = st.tuples(
    st.just("pixel"),
    line_index,
    st.one_of(st.integers(0, 9215), st.sampled_from([0, 9215])),
    st.one_of(st.sampled_from(PIXEL_TOKENS), numeric_text("0123456789 -,", 4)),
)
mutation = st.one_of(
    keypoint_change,
    keypoint_change,
    pixel_change,
    pixel_change,
    st.tuples(st.just("id"), line_index, st.just(0), st.one_of(st.sampled_from(ID_TOKENS), numeric_text())),
    st.tuples(
        st.just("insert"),
        line_index,
        byte_position,
        st.one_of(st.sampled_from(RAW_INSERTS), st.binary(min_size=1, max_size=3)),
    ),
    st.tuples(st.just("delete"), line_index, byte_position, st.integers(1, 3)),
    st.tuples(st.just("truncate"), line_index, byte_position, st.just(None)),
    st.tuples(st.just("line"), line_index, st.just(0), st.sampled_from(["remove", "double", "empty"])),
)


def _format_keypoint(rng: np.random.Generator) -> str:
    """A valid keypoint in one of the spellings real files use, or missing."""
    if rng.random() < 0.4:
        return ""
    value = rng.uniform(0.5, 95.5)
    style = rng.integers(0, 4)
    if style == 0:
        return repr(float(np.round(value, int(rng.integers(0, 11)))))
    if style == 1:
        return f"{value:.6e}"
    if style == 2:
        return str(int(value))
    return repr(float(np.float32(value)))


def _pixels(rng: np.random.Generator) -> list[str]:
    return [str(v) for v in rng.integers(0, 256, 96 * 96).tolist()]


@st.composite
def csv_case(draw, kind: str):
    """(bytes, num_threads) of a training or test file, valid and then mutated."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = draw(st.sampled_from([0, 1, 1, 2, 2, 3, 4]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    header = ",".join(oracle.TRAINING_HEADER if kind == "training" else oracle.TEST_HEADER)
    rows_fields: list[list] = []  # fields before Image, then the pixels
    for i in range(rows):
        lead = [_format_keypoint(rng) for _ in range(30)] if kind == "training" else [str(i * 7 + 1)]
        rows_fields.append([*lead, _pixels(rng)])
    mutations = draw(st.lists(mutation, max_size=4))
    # Field-level changes first, on the rows' fields ...
    for change, line, position, payload in mutations:
        if not rows_fields or change not in ("keypoint", "pixel", "id", "line"):
            continue
        index = (line - 1) % len(rows_fields) if line else 0
        fields = rows_fields[index]  # [] once the line was emptied
        if change == "line" and payload == "remove":
            del rows_fields[index]
        elif change == "line" and payload == "double":
            rows_fields.insert(index, [*fields[:-1], list(fields[-1])] if fields else [])
        elif change == "line":
            rows_fields[index] = []
        elif not fields:
            continue
        elif change == "keypoint" and kind == "training":
            fields[position] = payload
        elif change == "id" and kind == "test":
            fields[0] = payload
        elif change == "pixel":
            fields[-1][position] = payload
    # ... then byte-level ones, on the lines with their terminators.
    texts = [header] + [",".join([*f[:-1], " ".join(f[-1])]) if f else "" for f in rows_fields]
    lines = [(t + eol).encode("utf-8") for t in texts]
    if not draw(st.booleans()):
        lines[-1] = lines[-1][: -len(eol)]
    for change, line, position, payload in mutations:
        index = _line(line, len(lines))
        at = position % (len(lines[index]) + 1)
        if change == "insert":
            lines[index] = lines[index][:at] + payload + lines[index][at:]
        elif change == "delete":
            lines[index] = lines[index][:at] + lines[index][at + payload :]
        elif change == "truncate":
            lines = lines[:index] + [lines[index][:at]]
    return b"".join(lines), draw(st.integers(1, 4))


def _line(drawn: int, lines: int) -> int:
    """The line a drawn index (0 = the header, else a data line) falls on."""
    return 0 if drawn == 0 or lines == 1 else 1 + (drawn - 1) % (lines - 1)


def _join(header: str, lines: list[list], eol: str, last_eol: bool) -> bytes:
    text = [header] + [",".join([*line[:-1], " ".join(line[-1])]) for line in lines]
    return (eol.join(text) + (eol if last_eol else "")).encode("utf-8")


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="fkd-fuzz-") as folder:
        yield Path(folder)


def _note(text: str) -> None:
    """Counts an outcome in hypothesis' statistics (--hypothesis-show-statistics)."""
    try:
        event(text)
    except InvalidArgument:  # called outside a hypothesis test
        pass


def _check_csv(scratch: Path, data: bytes, threads: int, kind: str) -> None:
    path = scratch / f"{kind}.csv"
    path.write_bytes(data)
    read = read_training if kind == "training" else read_test
    from_memory = native().read_kaggle_training if kind == "training" else native().read_kaggle_test
    try:
        first, images = oracle.read_training(data) if kind == "training" else oracle.read_test(data)
    except oracle.OracleError as expected:
        _note(f"error: {expected.why.split(' ')[0]} ({'header' if expected.line == 1 else 'row'})")
        with pytest.raises(KaggleFormatError) as caught:
            read(path, num_threads=threads)
        got = (caught.value.line, caught.value.column)
        assert got == expected.where, f"reader: {caught.value}\noracle: {expected}"
        if expected.why.endswith("repeated"):
            return  # found after parsing, by the Python layer: the memory parser accepts the file
        with pytest.raises(native().KaggleCsvError) as caught_in_memory:
            from_memory(data, HEADERS[kind], threads)
        assert tuple(caught_in_memory.value.args[1:3]) == expected.where
        return
    _note(f"read {len(images)} rows")
    result = read(path, num_threads=threads)
    got_first = result.keypoints if kind == "training" else result.image_ids
    assert got_first.dtype == first.dtype and got_first.shape == first.shape
    assert got_first.tobytes() == first.tobytes()  # bit for bit: signed zeros, NaN
    assert np.array_equal(result.images, images)
    memory_first, memory_images = from_memory(data, HEADERS[kind], threads)
    assert memory_first.tobytes() == first.tobytes() and np.array_equal(memory_images, images)


@fuzz_settings
@given(case=csv_case("training"))
def test_training_reader_agrees_with_the_oracle(scratch, case):
    _check_csv(scratch, *case, "training")


@fuzz_settings
@given(case=csv_case("test"))
def test_test_reader_agrees_with_the_oracle(scratch, case):
    _check_csv(scratch, *case, "test")


def test_every_hostile_token_agrees_with_the_oracle(scratch):
    # The seeds of the corpus, each alone in an otherwise valid file: every token
    # in a keypoint (training), in the first and last pixel, and in an ImageId
    # (test). Random draws reach a given token rarely; this reaches each once.
    rng = np.random.default_rng(3)
    base = [[_format_keypoint(rng) for _ in range(30)] + [_pixels(rng)] for _ in range(2)]
    header = ",".join(oracle.TRAINING_HEADER)
    for column, token in enumerate(KEYPOINT_TOKENS):
        rows = [[*r[:-1], list(r[-1])] for r in base]
        rows[1][column % 30] = token
        _check_csv(scratch, _join(header, rows, "\r\n", True), 2, "training")
    for token in PIXEL_TOKENS:
        for pixel in (0, 9215):
            rows = [[*r[:-1], list(r[-1])] for r in base]
            rows[1][-1][pixel] = token
            _check_csv(scratch, _join(header, rows, "\n", pixel == 0), 2, "training")
    for token in ID_TOKENS:
        rows = [["5", base[0][-1]], [token, base[1][-1]]]
        _check_csv(scratch, _join(",".join(oracle.TEST_HEADER), rows, "\n", True), 1, "test")


@st.composite
def lookup_case(draw) -> bytes:
    rows = draw(st.sampled_from([0, 1, 3, 6, 6, 6]))
    with_location = draw(st.booleans())
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    fields = [[str(i + 1), str(i // 3 + 1), FEATURES[(i * 7) % 30]] for i in range(rows)]
    if with_location:
        fields = [f + [""] if i % 2 else f for i, f in enumerate(fields)]  # Kaggle leaves it out
    header = ["RowId", "ImageId", "FeatureName"] + (["Location"] if with_location else [])
    changes = draw(
        st.lists(
            st.tuples(
                line_index,
                st.integers(0, 3),
                st.one_of(
                    st.sampled_from(ID_TOKENS + FEATURES[:3] + ["chin_x", "", "1", "Location", "x,y"]),
                    numeric_text(),
                ),
            ),
            max_size=3,
        )
    )
    for row, column, token in changes:
        target = header if row == 0 or not fields else fields[row % len(fields)]
        if column < len(target):
            target[column] = token
        else:
            target.append(token)
    lines = [(",".join(f) + eol).encode() for f in [header, *fields]]
    for line, position, payload in draw(
        st.lists(st.tuples(line_index, st.integers(0, 60), st.sampled_from(RAW_INSERTS)), max_size=2)
    ):
        index = _line(line, len(lines))
        at = position % (len(lines[index]) + 1)
        lines[index] = lines[index][:at] + payload + lines[index][at:]
    return b"".join(lines)


@fuzz_settings
@given(data=lookup_case())
def test_lookup_reader_agrees_with_the_oracle(scratch, data):
    path = scratch / "IdLookupTable.csv"
    path.write_bytes(data)
    try:
        expected = oracle.read_lookup_table(data)
    except oracle.OracleError as error:
        event(f"error: {error.why.split(' ')[0]}")
        with pytest.raises(KaggleFormatError) as caught:
            read_lookup_table(path)
        assert (caught.value.line, caught.value.column) == error.where, f"reader: {caught.value}\noracle: {error}"
        return
    event(f"read {len(expected)} rows")
    table = read_lookup_table(path)
    assert list(table.itertuples(index=False, name=None)) == expected
    assert table["RowId"].dtype == np.int64 and table["ImageId"].dtype == np.int64


def _small_zip(method: int) -> tuple[bytes, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(11)
    lines = [[_format_keypoint(rng) for _ in range(30)] + [_pixels(rng)] for _ in range(2)]
    data = _join(",".join(oracle.TRAINING_HEADER), lines, "\r\n", True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("training.csv", data)
    return buffer.getvalue(), oracle.read_training(data)


ZIPS = {method: _small_zip(method) for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2)}


@fuzz_settings
@given(
    method=st.sampled_from(sorted(ZIPS)),
    # Positions from the start (local header, data) and from the end (central
    # directory, end record), where zipfile's own parsing is exercised.
    changes=st.lists(
        st.tuples(st.one_of(st.integers(0, 2**20), st.integers(-120, -1)), st.integers(0, 255)), min_size=1, max_size=2
    ),
)
def test_damaged_zips_give_the_data_or_a_format_error(scratch, method, changes):
    blob, (keypoints, images) = ZIPS[method]
    blob = bytearray(blob)
    for position, value in changes:
        blob[position % len(blob)] = value
    path = scratch / "training.zip"
    path.write_bytes(bytes(blob))
    try:
        got = read_training(path)
    except KaggleFormatError as error:
        event("format error" if error.line else "zip error")
        assert error.path.startswith(str(path))
    else:
        event("read intact")
        assert got.keypoints.tobytes() == keypoints.tobytes() and np.array_equal(got.images, images)
