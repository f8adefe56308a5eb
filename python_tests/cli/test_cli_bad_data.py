"""Data files that once made `fkd-ops` print a traceback (issue 14) end in one line."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from fkd_ops import KEYPOINT_COLUMNS, cli

HEADER = ",".join((*KEYPOINT_COLUMNS, "Image")).encode()


def _empty_lines(tmp_path):
    # Before: "Unable to allocate 90.0 GiB" from numpy, with a traceback.
    path = tmp_path / "training.csv"
    path.write_bytes(HEADER + b"\n" + b"\n" * 10_000_000)
    return path, "line 2: the line is empty"


def _damaged_deflate(tmp_path):
    # Before: a raw zlib.error, with a traceback.
    path = tmp_path / "training.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("training.csv", HEADER + b"\n")
    blob = bytearray(path.read_bytes())
    name_length, extra_length = np.frombuffer(blob[26:30], "<u2")
    blob[30 + int(name_length) + int(extra_length)] = 0xFF  # a deflate block of the reserved type
    path.write_bytes(bytes(blob))
    return path, "cannot read the zip archive: Error -3 while decompressing data: invalid block type"


@pytest.mark.parametrize("make", [_empty_lines, _damaged_deflate])
def test_bad_data_ends_in_one_line_naming_the_file(tmp_path, capsys, make):
    path, words = make(tmp_path)
    code = cli.main(["show", "--data", str(path), "--out", str(tmp_path / "faces.png")])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_FAILURE
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"fkd-ops show: error: {path}") and words in err, err
    assert not (tmp_path / "faces.png").exists()


def test_a_damaged_run_config_is_named(tmp_path, capsys):
    # Before: "fkd-ops evaluate: error: Expecting property name enclosed in double
    # quotes: line 1 column 2 (char 1)", naming no file.
    (tmp_path / "predictor.keras").write_bytes(b"not read: the settings come first")
    (tmp_path / "config.json").write_text("{")
    code = cli.main(["evaluate", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_FAILURE
    assert err.startswith(f"fkd-ops evaluate: error: {tmp_path / 'config.json'}: cannot read the run's settings"), err
