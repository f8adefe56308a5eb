"""The native Kaggle CSV reader, the lookup table and the submission writer."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fkd_ops import KEYPOINT_COLUMNS
from fkd_ops.data import kaggle_files as kf
from fkd_ops.data.kaggle_files import KaggleFormatError, read_lookup_table, read_test, read_training, write_submission

FIXTURES = Path(__file__).parents[1] / "fixtures"
HEADER = ",".join((*KEYPOINT_COLUMNS, "Image"))


def _image(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (96, 96), dtype=np.uint8)


def _pixels(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel().tolist()))


def _keypoint_text(values: np.ndarray) -> list[str]:
    return ["" if np.isnan(v) else repr(float(v)) for v in values]


def _training_rows(n: int, seed: int = 0) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Rows as field lists, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    images = np.stack([_image(rng) for _ in range(n)]) if n else np.zeros((0, 96, 96), np.uint8)
    digits = rng.integers(0, 11, (n, 30))  # 0 to 10 decimals, as in the real file
    keypoints = np.vectorize(round)(rng.uniform(0.5, 95.5, (n, 30)), digits).astype(np.float64).reshape(n, 30)
    keypoints[rng.random((n, 30)) < 0.4] = np.nan
    rows = [_keypoint_text(keypoints[i]) + [_pixels(images[i])] for i in range(n)]
    return rows, keypoints.astype(np.float32), images


def _csv(header: str, rows: list[list[str]], eol: str = "\r\n", last_eol: bool = True) -> bytes:
    lines = [header] + [",".join(r) for r in rows]
    return (eol.join(lines) + (eol if last_eol else "")).encode()


def _write(tmp_path: Path, data: bytes, name: str = "training.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
@pytest.mark.parametrize("last_eol", [True, False])
def test_training_reads_exact_values(tmp_path, eol, last_eol):
    rows, keypoints, images = _training_rows(7)
    got = read_training(_write(tmp_path, _csv(HEADER, rows, eol, last_eol)))
    assert got.keypoints.dtype == np.float32 and got.keypoints.shape == (7, 30)
    assert got.images.dtype == np.uint8 and got.images.shape == (7, 96, 96)
    np.testing.assert_array_equal(got.images, images)
    # Each value is what float(text) gives, rounded to float32; empty fields are NaN.
    np.testing.assert_array_equal(got.keypoints, keypoints)
    assert len(got) == 7


def test_training_matches_pandas_on_real_number_formats(tmp_path):
    texts = ["66.0335639098", "76.352", "48.0", "0.686592", "95.9356444444", "1e1", "-0.5", "7"]
    rng = np.random.default_rng(1)
    row = texts + [""] * 22 + [_pixels(_image(rng))]
    path = _write(tmp_path, _csv(HEADER, [row]))
    got = read_training(path)
    expected = pd.read_csv(path)[list(KEYPOINT_COLUMNS)].to_numpy(np.float32)
    np.testing.assert_array_equal(got.keypoints, expected)


def test_header_only_gives_empty_arrays(tmp_path):
    got = read_training(_write(tmp_path, (HEADER + "\r\n").encode()))
    assert got.keypoints.shape == (0, 30) and got.images.shape == (0, 96, 96)
    got = read_test(_write(tmp_path, b"ImageId,Image", "test.csv"))
    assert got.image_ids.shape == (0,) and got.images.shape == (0, 96, 96)


def test_test_file(tmp_path):
    rng = np.random.default_rng(2)
    images = np.stack([_image(rng) for _ in range(5)])
    ids = [3, 1, 7, 2, 10]
    rows = [[str(i), _pixels(im)] for i, im in zip(ids, images)]
    got = read_test(_write(tmp_path, _csv("ImageId,Image", rows), "test.csv"))
    assert got.image_ids.dtype == np.int64
    np.testing.assert_array_equal(got.image_ids, ids)
    np.testing.assert_array_equal(got.images, images)


def test_reads_from_zip(tmp_path):
    rows, keypoints, images = _training_rows(3)
    archive = tmp_path / "training.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("training.csv", _csv(HEADER, rows))
    got = read_training(archive)
    np.testing.assert_array_equal(got.images, images)
    np.testing.assert_array_equal(got.keypoints, keypoints)


def test_zip_errors_name_the_member(tmp_path):
    rows, _, _ = _training_rows(2)
    rows[1][0] = "oops"
    archive = tmp_path / "training.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("training.csv", _csv(HEADER, rows))
    with pytest.raises(KaggleFormatError, match=r"training\.zip:training\.csv: line 3, column 1"):
        read_training(archive)


def test_zip_must_hold_one_csv(tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", "x")
        z.writestr("b.csv", "y")
    with pytest.raises(KaggleFormatError, match="one .csv file, found a.csv, b.csv"):
        read_training(archive)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_training(tmp_path / "nope.csv")


def _mutated(kind: str) -> tuple[bytes, int, int, str, str]:
    """A training file with one defect on a data line, and where the error must point:
    (bytes, line, column, field, words the reason must contain)."""
    rows, _, _ = _training_rows(4, seed=3)
    bad = rows[2]  # file line 4
    line, column, field = 4, 31, "Image"
    last_eol = True
    if kind == "short_row":
        del bad[30]
        words = "has 30 fields, expected 31"
    elif kind == "short_row_two_fields":
        del rows[2][5:]
        line, column, field, words = 4, 6, KEYPOINT_COLUMNS[5], "has 5 fields, expected 31"
    elif kind == "long_row":
        bad.append("1")
        column, field, words = 32, "", "has 32 fields, expected 31"
    elif kind == "extra_keypoint":
        bad.insert(3, "12.5")
        column, field, words = 32, "", "has 32 fields"
    elif kind == "non_numeric_keypoint":
        bad[4] = "12,5".replace(",", "x")
        column, field, words = 5, KEYPOINT_COLUMNS[4], "'12x5' is not a number"
    elif kind == "nan_text_keypoint":
        bad[4] = "nan"
        column, field, words = 5, KEYPOINT_COLUMNS[4], "'nan' is not a number"
    elif kind == "pixel_too_big":
        pixels = bad[30].split(" ")
        pixels[99] = "256"
        bad[30] = " ".join(pixels)
        words = "pixel 100 is '256', outside 0..255"
    elif kind == "pixel_negative":
        pixels = bad[30].split(" ")
        pixels[0] = "-1"
        bad[30] = " ".join(pixels)
        words = "pixel 1 is '-1', not an integer 0..255"
    elif kind == "pixel_not_integer":
        pixels = bad[30].split(" ")
        pixels[5000] = "3.5"
        bad[30] = " ".join(pixels)
        words = "pixel 5001 is '3.5', not an integer"
    elif kind == "too_few_pixels":
        bad[30] = " ".join(bad[30].split(" ")[:9215])
        words = "Image has 9215 pixel values, expected 9216"
    elif kind == "too_many_pixels":
        bad[30] += " 7"
        words = "Image has 9217 pixel values, expected 9216"
    elif kind == "double_space":
        bad[30] = bad[30].replace(" ", "  ", 1)
        words = "pixel 2 is empty"
    elif kind == "trailing_space":
        bad[30] += " "
        words = "pixel 9217 is empty"
    elif kind == "empty_line":
        rows[2] = []
        column, field, words = 0, "", "the line is empty"
    elif kind == "truncated_last_line":
        rows = rows[:3]
        rows[2][30] = rows[2][30][:20001]
        last_eol = False
        words = "truncated"
    else:
        raise AssertionError(kind)
    return _csv(HEADER, [r for r in rows], last_eol=last_eol), line, column, field, words


ROW_DEFECTS = [
    "short_row",
    "short_row_two_fields",
    "long_row",
    "extra_keypoint",
    "non_numeric_keypoint",
    "nan_text_keypoint",
    "pixel_too_big",
    "pixel_negative",
    "pixel_not_integer",
    "too_few_pixels",
    "too_many_pixels",
    "double_space",
    "trailing_space",
    "empty_line",
    "truncated_last_line",
]


@pytest.mark.parametrize("kind", ROW_DEFECTS)
def test_each_row_defect_names_file_line_and_column(tmp_path, kind):
    data, line, column, field, words = _mutated(kind)
    path = _write(tmp_path, data)
    with pytest.raises(KaggleFormatError) as caught:
        read_training(path)
    error = caught.value
    assert (error.line, error.column, error.field) == (line, column, field)
    assert error.path == str(path)
    message = str(error)
    assert message.startswith(f"{path}: line {line}")
    if column:
        assert f"column {column}" in message
    assert words in message


def test_pixel_error_in_test_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = [["1", _pixels(_image(rng))], ["2", _pixels(_image(rng)).replace(" ", " 999 ", 1)]]
    with pytest.raises(KaggleFormatError, match=r"line 3, column 2 \(Image\): pixel 2 is '999'"):
        read_test(_write(tmp_path, _csv("ImageId,Image", rows), "test.csv"))


@pytest.mark.parametrize(
    "image_id, words",
    [
        ("x1", "'x1', expected a non-negative integer ImageId"),
        ("", "empty, expected a non-negative integer ImageId"),
        ("-3", "'-3', expected a non-negative integer"),
    ],
)
def test_bad_image_id(tmp_path, image_id, words):
    rng = np.random.default_rng(0)
    rows = [["1", _pixels(_image(rng))], [image_id, _pixels(_image(rng))]]
    with pytest.raises(KaggleFormatError, match=r"line 3, column 1 \(ImageId\): " + words):
        read_test(_write(tmp_path, _csv("ImageId,Image", rows), "test.csv"))


def test_repeated_image_id(tmp_path):
    rng = np.random.default_rng(0)
    rows = [["4", _pixels(_image(rng))], ["5", _pixels(_image(rng))], ["4", _pixels(_image(rng))]]
    with pytest.raises(KaggleFormatError, match=r"line 4, column 1 \(ImageId\): ImageId 4 appears more than once"):
        read_test(_write(tmp_path, _csv("ImageId,Image", rows), "test.csv"))


def test_empty_file(tmp_path):
    for reader, name in ((read_training, "training.csv"), (read_test, "test.csv")):
        path = _write(tmp_path, b"", name)
        with pytest.raises(KaggleFormatError, match=r": line 1: the file is empty") as caught:
            reader(path)
        assert caught.value.line == 1 and caught.value.path == str(path)


@pytest.mark.parametrize(
    "header, column, words",
    [
        (HEADER.replace("nose_tip_x", "nose_x"), 21, "'nose_x' where 'nose_tip_x' belongs"),
        (HEADER.replace(",Image", ""), 31, "the header has 30 fields, expected 31"),
        (HEADER + ",Extra", 32, "the header has 32 fields, expected 31"),
        ("ImageId,Image", 1, "'ImageId' where 'left_eye_center_x' belongs"),
    ],
)
def test_wrong_header(tmp_path, header, column, words):
    rows, _, _ = _training_rows(1)
    with pytest.raises(KaggleFormatError, match=rf"line 1, column {column}\b.*{words}"):
        read_training(_write(tmp_path, _csv(header, rows)))


def test_training_file_given_to_read_test(tmp_path):
    rows, _, _ = _training_rows(1)
    with pytest.raises(KaggleFormatError, match="'left_eye_center_x' where 'ImageId' belongs"):
        read_test(_write(tmp_path, _csv(HEADER, rows)))


def test_earliest_error_wins_whatever_the_threads(tmp_path):
    rows, _, _ = _training_rows(40, seed=5)
    rows[33][2] = "late"
    rows[6][7] = "early"
    path = _write(tmp_path, _csv(HEADER, rows))
    for threads in (1, 2, 3, 8):
        with pytest.raises(KaggleFormatError) as caught:
            read_training(path, num_threads=threads)
        assert (caught.value.line, caught.value.column) == (8, 8)


def test_threads_do_not_change_results(tmp_path):
    rows, keypoints, images = _training_rows(23, seed=6)
    path = _write(tmp_path, _csv(HEADER, rows))
    for threads in (1, 2, 5, 64):
        got = read_training(path, num_threads=threads)
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.keypoints, keypoints)


def test_recognises_originals_by_size_then_hash(tmp_path, monkeypatch, caplog):
    rows, _, _ = _training_rows(2)
    data = _csv(HEADER, rows)
    path = _write(tmp_path, data)
    original = kf._KnownFile("training.csv (test original)", len(data), hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(kf, "KNOWN_FILES", (original,))
    monkeypatch.setattr(kf, "_KNOWN_SIZES", {len(data)})
    with caplog.at_level(logging.INFO, logger="fkd_ops.data.kaggle_files"):
        read_training(path)
    assert "is the original training.csv (test original)" in caplog.text

    # Read again unchanged: recognised without hashing again.
    real_sha256 = kf._sha256_of_stream
    monkeypatch.setattr(kf, "_sha256_of_stream", lambda _stream: pytest.fail("hashed the same file twice"))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fkd_ops.data.kaggle_files"):
        read_training(path)
    assert "is the original training.csv (test original)" in caplog.text
    monkeypatch.setattr(kf, "_sha256_of_stream", real_sha256)

    # Same size, other bytes: hashed, and said not to be the original.
    caplog.clear()
    other = _write(tmp_path, data.replace(b"Image\r\n", b"Image\n\n", 1)[: len(data)], "other.csv")
    assert other.stat().st_size == len(data)
    with caplog.at_level(logging.INFO, logger="fkd_ops.data.kaggle_files"):
        assert kf.recognise_original(other) is None
    assert "has the size of an original Kaggle file but not its content" in caplog.text


def test_other_sizes_are_not_hashed(tmp_path, monkeypatch):
    rows, _, _ = _training_rows(2)
    path = _write(tmp_path, _csv(HEADER, rows))

    def no_hashing(*_args, **_kwargs):
        raise AssertionError("hashed a file whose size matches no original")

    monkeypatch.setattr(kf.hashlib, "sha256", no_hashing)
    monkeypatch.setattr(kf, "_sha256_of", no_hashing)
    read_training(path)


def test_known_originals_are_the_documented_files():
    sizes = {f.size for f in kf.KNOWN_FILES}
    assert {238_064_810, 238_057_760, 59_822_141, 59_820_357} == sizes
    assert all(len(f.sha256) == 64 for f in kf.KNOWN_FILES)


# ---------------------------------------------------------------- lookup table and submission


def test_read_real_lookup_excerpt():
    table = read_lookup_table(FIXTURES / "IdLookupTable_excerpt.csv")
    assert list(table.columns) == ["RowId", "ImageId", "FeatureName"]
    assert table["RowId"].dtype == np.int64 and table["ImageId"].dtype == np.int64
    assert table.iloc[0].tolist() == [1, 1, "left_eye_center_x"]
    assert set(table["FeatureName"]) <= set(KEYPOINT_COLUMNS)
    assert table["RowId"].is_monotonic_increasing


def _predictions_for(table: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image_ids = np.unique(table["ImageId"].to_numpy())
    rng.shuffle(image_ids)  # prediction rows need not be in ImageId order
    return rng.uniform(-5, 101, (len(image_ids), 30)), image_ids


def test_submission_against_the_real_lookup_table(tmp_path):
    table = read_lookup_table(FIXTURES / "IdLookupTable_excerpt.csv")
    predictions, image_ids = _predictions_for(table)
    out = tmp_path / "sub" / "submission.csv"
    assert write_submission(out, predictions, image_ids, table) == len(table)

    text = out.read_bytes()
    sample = (FIXTURES / "SampleSubmission_excerpt.csv").read_bytes()
    assert text.split(b"\n")[0] == sample.split(b"\n")[0] == b"RowId,Location"
    written = pd.read_csv(out)
    sample_rows = pd.read_csv(FIXTURES / "SampleSubmission_excerpt.csv")
    # One row per lookup row, in order: the same RowIds as Kaggle's sample submission.
    np.testing.assert_array_equal(written["RowId"], sample_rows["RowId"])
    np.testing.assert_array_equal(written["RowId"], table["RowId"])
    row_of = {image_id: i for i, image_id in enumerate(image_ids)}
    expected = [
        np.clip(predictions[row_of[i], KEYPOINT_COLUMNS.index(f)], 0, 96)
        for i, f in zip(table["ImageId"], table["FeatureName"])
    ]
    np.testing.assert_allclose(written["Location"], expected, rtol=1e-5, atol=1e-4)
    assert written["Location"].between(0, 96).all()
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary file left


@pytest.mark.parametrize(
    "defect, words",
    [
        ("missing_image", "the predictions lack ImageId"),
        ("unknown_feature", "the predictions lack FeatureName 'chin_x'"),
        ("nan_prediction", "is nan"),
        ("wrong_shape", "predictions must have shape"),
        ("repeated_id", "repeated ImageId"),
    ],
)
def test_submission_errors_leave_no_file(tmp_path, defect, words):
    table = read_lookup_table(FIXTURES / "IdLookupTable_excerpt.csv")
    predictions, image_ids = _predictions_for(table)
    if defect == "missing_image":
        keep = image_ids != 412
        predictions, image_ids = predictions[keep], image_ids[keep]
    elif defect == "unknown_feature":
        table = table.copy()
        table.loc[5, "FeatureName"] = "chin_x"
    elif defect == "nan_prediction":
        predictions[0, :] = np.nan
    elif defect == "wrong_shape":
        predictions = predictions[:, :29]
    elif defect == "repeated_id":
        image_ids[1] = image_ids[0]
    out = tmp_path / "submission.csv"
    out.write_text("previous\n")
    with pytest.raises(ValueError, match=words):
        write_submission(out, predictions, image_ids, table)
    assert out.read_text() == "previous\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    table = read_lookup_table(FIXTURES / "IdLookupTable_excerpt.csv")
    predictions, image_ids = _predictions_for(table)

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        write_submission(tmp_path / "submission.csv", predictions, image_ids, table)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text, words",
    [
        ("RowId,Image,FeatureName\r\n1,1,left_eye_center_x\r\n", "expected 'RowId,ImageId,FeatureName'"),
        (
            "RowId,ImageId,FeatureName\r\n1,1,left_eye_center_x\r\nx,1,left_eye_center_y\r\n",
            "line 3, column 1 \\(RowId\\)",
        ),
        (
            "RowId,ImageId,FeatureName\r\n1,1,left_eye_center_x\r\n2,1,eye\r\n",
            "line 3, column 3 \\(FeatureName\\): unknown",
        ),
        ("RowId,ImageId,FeatureName\r\n1,1,left_eye_center_x\r\n1,2,left_eye_center_y\r\n", "RowId 1 appears more"),
    ],
)
def test_lookup_table_errors(tmp_path, text, words):
    path = _write(tmp_path, text.encode(), "IdLookupTable.csv")
    with pytest.raises(KaggleFormatError, match=words):
        read_lookup_table(path)
