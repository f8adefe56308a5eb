"""The readers under hostile conditions (issue 14): threads that cannot start, a
file truncated while it is read, memory bounded by the file, numbers beyond
float32, ids beyond int64, damaged, encrypted and bomb zips, and the modes of
atomically written files. Each test is one case that once crashed the process,
gave a wrong answer or an unclear error."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from fkd_ops import KEYPOINT_COLUMNS
from fkd_ops.data.kaggle_files import TRAINING_HEADER, KaggleFormatError, read_lookup_table, read_test, read_training
from fkd_ops.files import atomic_write
from fkd_ops.ops.libraries import native

HEADER = ",".join((*KEYPOINT_COLUMNS, "Image")).encode()
ZERO_IMAGE = b" ".join([b"0"] * 96 * 96)
# Under AddressSanitizer (the .ci/sanitize run) address-space limits cannot be
# set: its shadow memory alone reserves terabytes.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


def _row(keypoints: list[str] | None = None, image: bytes = ZERO_IMAGE) -> bytes:
    fields = keypoints if keypoints is not None else ["48.5"] * 30
    return ",".join(fields).encode() + b"," + image


def _training_file(path: Path, rows: int, eol: bytes = b"\r\n") -> Path:
    path.write_bytes(eol.join([HEADER] + [_row()] * rows) + eol)
    return path


def _run_child(script: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs a Python script in a fresh process (so a crash cannot take the test
    runner with it) from a folder outside the source tree."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )


# A child's set-up: the address space limited to what it uses now plus a margin.
_LIMITED = """
    import resource, sys
    import numpy as np
    from fkd_ops.data.kaggle_files import read_training
    from fkd_ops.ops.libraries import native
    native()
    def limit_address_space(margin_mb):
        with open("/proc/self/status") as f:
            size_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        limit = (size_kb * 1024) + margin_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
"""


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer reserves more address space than any limit allows")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_threads_that_cannot_start_are_an_exception_and_the_reader_still_works(tmp_path):
    # 300 rows, 256 threads asked for: their stacks (8 MiB each) cannot fit in
    # the margin. Before: "terminate called without an active exception" (SIGABRT).
    path = _training_file(tmp_path / "training.csv", 300)
    result = _run_child(
        _LIMITED
        + f"""
    limit_address_space(160)
    try:
        read_training({str(path)!r}, num_threads=256)
    except RuntimeError as exc:
        print("RuntimeError:", exc)
    print("rows with 2 threads:", len(read_training({str(path)!r}, num_threads=2)))
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RuntimeError: " + str(path) + ": cannot start reader thread" in result.stdout, result.stdout
    assert "of 256" in result.stdout and "num_threads" in result.stdout
    assert "rows with 2 threads: 300" in result.stdout


@pytest.mark.skipif(UNDER_ASAN, reason="AddressSanitizer reserves more address space than any limit allows")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_out_of_memory_is_a_memory_error_naming_the_file_and_what_was_allocated(tmp_path):
    # The arrays (numpy's allocation) and the reader's own buffers (std::bad_alloc,
    # which pybind11 alone would report as a bare "std::bad_alloc").
    many_rows = _training_file(tmp_path / "training.csv", 2000)
    long_row = tmp_path / "long.csv"
    long_row.write_bytes(HEADER + b"\n" + _row(["1" * 50_000_000] + ["2"] * 29) + b"\n")
    result = _run_child(
        _LIMITED
        + f"""
    limit_address_space(8)
    for path in ({str(many_rows)!r}, {str(long_row)!r}):
        try:
            read_training(path, num_threads=1)
        except MemoryError as exc:
            print("MemoryError:", exc)
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"MemoryError: {many_rows}: Unable to allocate"), result.stdout
    assert "for an array with shape (2000, 96, 96)" in lines[0]
    assert lines[1] == f"MemoryError: {long_row}: out of memory while parsing 1 row of training.csv", result.stdout


def test_a_file_shorter_than_said_is_an_error_not_sigbus(tmp_path):
    # The reader reads into memory it owns; bytes that are gone are an error.
    path = _training_file(tmp_path / "training.csv", 3)
    size = path.stat().st_size
    with open(path, "rb") as f:
        with pytest.raises(native().KaggleCsvError) as caught:
            native().read_kaggle_file(f.fileno(), size + 1000, "training", TRAINING_HEADER, 2)
    reason, line, column, _ = caught.value.args
    assert (line, column) == (0, 0)
    assert f"it shrank while it was read ({size + 1000} bytes when opened, it ends at byte {size}" in reason


def test_a_file_that_changed_while_read_is_an_error(tmp_path, monkeypatch):
    from fkd_ops.data import kaggle_files

    path = _training_file(tmp_path / "training.csv", 2)
    real_fstat = os.fstat
    calls = []

    def fstat_that_sees_a_write(fd):
        calls.append(fd)
        result = real_fstat(fd)
        if len(calls) == 2:  # the check after reading: the file grew meanwhile
            fields = list(result)
            fields[stat.ST_SIZE] += 10
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(kaggle_files.os, "fstat", fstat_that_sees_a_write)
    with pytest.raises(KaggleFormatError, match=r"it changed while it was read \(\d+ bytes when opened, \d+ now\)"):
        read_training(path)


def test_truncating_the_file_while_it_is_read_never_kills_the_process(tmp_path):
    # A thread truncates and rewrites the file while the main thread reads it
    # again and again. Before (a memory-mapped file): SIGBUS within a few reads.
    path = _training_file(tmp_path / "training.csv", 600)
    result = _run_child(
        f"""
    import os, threading
    import numpy as np
    from fkd_ops.data.kaggle_files import KaggleFormatError, read_training
    path = {str(path)!r}
    data = open(path, "rb").read()
    expected = read_training(path)
    stop = threading.Event()
    def churn():
        rng = np.random.default_rng(0)
        while not stop.is_set():
            with open(path, "r+b") as f:
                f.truncate(int(rng.integers(0, len(data))))
            with open(path, "r+b") as f:
                f.write(data)
    writer = threading.Thread(target=churn)
    writer.start()
    outcomes = {{"whole": 0, "error": 0}}
    try:
        for _ in range(150):
            try:
                got = read_training(path, num_threads=2)
            except KaggleFormatError:
                outcomes["error"] += 1
            else:
                assert np.array_equal(got.images[: len(got)], expected.images[: len(got)])
                outcomes["whole"] += 1
    finally:
        stop.set()
        writer.join()
    print("outcomes", outcomes)
    """,
        tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-3000:]}"
    assert "outcomes" in result.stdout


def test_memory_is_bounded_by_the_file_not_by_its_line_count(tmp_path):
    # A header then 10 MB of empty lines. Before: outputs sized from the line
    # count, "Unable to allocate 90.0 GiB". Now rows are indexed only up to the
    # first line too short to be a row.
    path = tmp_path / "training.csv"
    path.write_bytes(HEADER + b"\n" + b"\n" * 10_000_000)
    with pytest.raises(KaggleFormatError) as caught:
        read_training(path)
    assert (caught.value.line, caught.value.column) == (2, 0)
    assert "the line is empty" in str(caught.value)
    # A valid row first, then a short line: the short line is reported.
    path.write_bytes(HEADER + b"\n" + _row() + b"\n" + b"1,2\n" * 1_000_000)
    with pytest.raises(KaggleFormatError, match=r"line 3, column 3 \(right_eye_center_x\): missing"):
        read_training(path)
    # The indexing stops early whatever the threads: the earliest error still wins.
    for threads in (1, 3, 16):
        with pytest.raises(KaggleFormatError) as caught:
            read_training(path, num_threads=threads)
        assert caught.value.line == 3


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3.4028235e38", np.float32(3.4028235e38)),  # float32's largest value
        ("-1e-400", np.float32(-0.0)),  # below every double: rounds to (signed) zero
        ("1.5e-45", np.float32(1e-45)),  # the smallest float32 subnormal
    ],
)
def test_numbers_at_the_edges_of_float32_are_rounded_like_numpy(tmp_path, text, expected):
    keypoints = ["48.5"] * 30
    keypoints[7] = text
    path = tmp_path / "training.csv"
    path.write_bytes(HEADER + b"\n" + _row(keypoints) + b"\n")
    value = read_training(path).keypoints[0, 7]
    assert value.tobytes() == expected.tobytes()
    assert value.tobytes() == np.float32(float(text)).tobytes()


@pytest.mark.parametrize("text", ["-1e39", "3.4028236e38", "1e400", "1e99999999999999999999"])
def test_numbers_beyond_float32_are_an_error_naming_line_and_column(tmp_path, text):
    # Before: read as inf, while the literal inf was refused.
    keypoints = ["48.5"] * 30
    keypoints[4] = text
    path = tmp_path / "training.csv"
    path.write_bytes(HEADER + b"\n" + _row() + b"\n" + _row(keypoints) + b"\n")
    with pytest.raises(KaggleFormatError) as caught:
        read_training(path)
    assert (caught.value.line, caught.value.column, caught.value.field) == (3, 5, KEYPOINT_COLUMNS[4])
    assert f"'{text}' is out of range for a coordinate (beyond float32's largest value" in str(caught.value)


def test_image_id_beyond_int64_is_an_error(tmp_path):
    path = tmp_path / "test.csv"
    path.write_bytes(b"ImageId,Image\n1," + ZERO_IMAGE + b"\n99999999999999999999," + ZERO_IMAGE + b"\n")
    with pytest.raises(KaggleFormatError, match=r"line 3, column 1 \(ImageId\): '9{20}' is out of range"):
        read_test(path)


def test_lookup_ids_beyond_int64_are_an_error_naming_line_and_column(tmp_path):
    # Before: RowId 99999999999999999999 became -9223372036854775808 with a numpy
    # RuntimeWarning, then "appears more than once".
    path = tmp_path / "IdLookupTable.csv"
    path.write_bytes(
        b"RowId,ImageId,FeatureName,Location\r\n1,1,left_eye_center_x\r\n"
        b"99999999999999999999,1,left_eye_center_y\r\n-9223372036854775808,1,nose_tip_x\r\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KaggleFormatError) as caught:
            read_lookup_table(path)
    assert (caught.value.line, caught.value.column, caught.value.field) == (3, 1, "RowId")
    assert "'99999999999999999999' is out of range for a RowId (at most 9223372036854775807)" in str(caught.value)
    path.write_bytes(b"RowId,ImageId,FeatureName\n9223372036854775807,00009223372036854775807,nose_tip_x\n")
    table = read_lookup_table(path)
    assert table["RowId"].tolist() == table["ImageId"].tolist() == [2**63 - 1]


# ---------------------------------------------------------------- zips


def _zip(path: Path, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("training.csv", data)
    return path


def _member_data_offset(blob: bytes) -> int:
    """Where the first member's (compressed) data starts in a zip's bytes."""
    name_length, extra_length = np.frombuffer(blob[26:30], "<u2")
    return 30 + int(name_length) + int(extra_length)


def test_a_damaged_deflate_stream_is_a_format_error_naming_the_zip(tmp_path):
    path = _zip(tmp_path / "training.zip", HEADER + b"\n" + _row() + b"\n")
    blob = bytearray(path.read_bytes())
    blob[_member_data_offset(blob)] = 0xFF  # a deflate block of the reserved type 3
    path.write_bytes(bytes(blob))
    with pytest.raises(KaggleFormatError, match=r"cannot read the zip archive: .*invalid block type") as caught:
        read_training(path)
    assert caught.value.path == str(path)
    assert isinstance(caught.value.__cause__, zlib.error)


def test_an_encrypted_member_is_a_format_error_saying_so(tmp_path):
    # Python cannot write encrypted zips: set the "encrypted" flag by hand, in the
    # local header and in the central directory (which zipfile reads).
    path = _zip(tmp_path / "training.zip", HEADER + b"\n", zipfile.ZIP_STORED)
    blob = bytearray(path.read_bytes())
    central = blob.rfind(b"PK\x01\x02")
    for flags_at in (6, central + 8):
        blob[flags_at] |= 0x1
    path.write_bytes(bytes(blob))
    with pytest.raises(KaggleFormatError, match=r"training\.zip:training\.csv: the file is encrypted"):
        read_training(path)


def test_a_zip_bomb_of_empty_lines_is_refused_after_a_few_pieces(tmp_path):
    # 1 GiB of line breaks after the header, deflated to about 1 MB. Before: the
    # whole GiB was inflated (twice: +2 GB RSS) before anything was checked.
    path = tmp_path / "training.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("training.csv", "w", force_zip64=True) as member:
            member.write(HEADER + b"\n")
            block = b"\n" * (1 << 24)
            for _ in range(64):
                member.write(block)
    assert path.stat().st_size < 8 << 20
    result = _run_child(
        f"""
    import resource
    from fkd_ops.data.kaggle_files import KaggleFormatError, read_training
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_training({str(path)!r})
    except KaggleFormatError as exc:
        print("error:", exc)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("peak RSS grew by MiB:", grown // 1024)
    """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"error: {path}:training.csv: line 2: the line is empty" in result.stdout, result.stdout
    grown = int(result.stdout.split("peak RSS grew by MiB:")[1])
    assert grown < 64, result.stdout


def test_a_wrong_header_in_a_zip_is_found_before_the_member_is_inflated(tmp_path, monkeypatch):
    from fkd_ops.data import kaggle_files

    path = _zip(tmp_path / "training.zip", b"ImageId,Image\n" + b"1," + ZERO_IMAGE + b"\n" * 100)
    monkeypatch.setattr(kaggle_files, "_ZIP_PIECE", 64)
    pieces = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, *args, **kwargs):
        stream = real_open(self, *args, **kwargs)
        real_read = stream.read

        def read(n=-1):
            pieces.append(n)
            return real_read(n)

        stream.read = read
        return stream

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    with pytest.raises(KaggleFormatError, match=r"line 1, column 1 \(left_eye_center_x\): the header has 'ImageId'"):
        read_training(path)
    assert len(pieces) == 1  # the header arrived in the first 64 bytes; nothing more was inflated


def test_a_zip_member_without_a_line_break_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    # Before: a member of one endless line (1 GiB of "0" in a 1 MB zip) was
    # inflated whole (+1 GB RSS) before its header was checked at the first line
    # break, which never came.
    from fkd_ops.data import kaggle_files

    path = _zip(tmp_path / "training.zip", b"0" * (1 << 20))
    monkeypatch.setattr(kaggle_files, "_ZIP_PIECE", 1 << 10)
    inflated = []
    real_open = zipfile.ZipFile.open

    def counting_open(self, *args, **kwargs):
        stream = real_open(self, *args, **kwargs)
        real_read = stream.read
        stream.read = lambda n=-1: inflated.append(len(piece := real_read(n))) or piece
        return stream

    monkeypatch.setattr(zipfile.ZipFile, "open", counting_open)
    with pytest.raises(KaggleFormatError, match=r"line 1, column 1 \(left_eye_center_x\): the header has '0000"):
        read_training(path)
    assert sum(inflated) <= kaggle_files._MAX_HEADER_BYTES  # not the member's 1 MiB


# ---------------------------------------------------------------- file modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_write_gives_new_files_the_mode_the_umask_allows(tmp_path, umask, mode):
    # Before: 0600 whatever the umask (tempfile.mkstemp's mode).
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "out.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == mode


def test_atomic_writers_refuse_a_folder_naming_it(tmp_path):
    # Before: "[Errno 21] Is a directory: '.../.x.1a2b.tmp' -> '.../x'" after all
    # the writing (e.g. fkd-ops predict --out FOLDER), naming our temporary file.
    from fkd_ops.files import atomic_path

    folder = tmp_path / "x"
    folder.mkdir()
    for writer in (atomic_write, atomic_path):
        with pytest.raises(IsADirectoryError, match=rf"^{folder} is a folder"):
            with writer(folder):
                pass
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    with atomic_write(path) as f:
        f.write("new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        read_training(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        read_lookup_table(tmp_path)
