"""Synthetic faces in Kaggle's exact file format: the package's built-in data.

Each face is drawn around 15 keypoints sampled from a shape model fitted to the
real Kaggle labels (:mod:`fkd_ops.data.face_shape_model`), so that every keypoint
sits on the feature it names: the pupils at the eye centres, the almond of each
eye ending at its corners, each eyebrow stroke ending at its inner and outer
ends, the nose tip on the tip's highlight between the nostrils, the lips ending
at the mouth corners, the top of the upper lip at the top lip centre and the
bottom of the lower lip at the bottom lip centre. Faces vary in position,
scale, rotation, turn and expression (the shape model's pose and modes; open
mouths show teeth), fill the frame as the competition's crops do, and vary in
skin, hair, lighting (a shaded face surface lit mostly from the front, a third
from one side), background, exposure, contrast, blur, noise and JPEG
compression; some wear glasses, a beard,
a moustache or stubble (see :mod:`fkd_ops.data.face_drawing`). Which keypoints
a training row carries follows the real file's patterns (about 70% of rows: eye
centres, nose tip and bottom lip only).

:func:`write_synthetic_kaggle` writes training.csv, test.csv and IdLookupTable.csv
byte for byte in the competition's format (CRLF line ends, keypoints printed as
the real file prints them), plus test_keypoints.csv, the test set's true
keypoints. The same seed gives the same bytes (on one kind of machine with one
numpy release: numpy's vectorized math may round a last bit differently on
another CPU).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fkd_ops.data import face_shape_model as model
from fkd_ops.data.face_drawing import render_faces
from fkd_ops.files import atomic_write
from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_COLUMNS, NUM_KEYPOINTS

GENERATOR_VERSION = 3
"""Bumped whenever the bytes written for a given seed change (it keys the cache)."""

TRAINING_FILE = "training.csv"
TEST_FILE = "test.csv"
LOOKUP_FILE = "IdLookupTable.csv"
TEST_KEYPOINTS_FILE = "test_keypoints.csv"

CHUNK = 32
"""Faces rendered at once (and the unit of seeding: chunk k of a file always
draws from the same random stream)."""

_EOL = b"\r\n"  # the real files end lines with CRLF
_MARGIN = 2.0  # keypoints are kept at least this far inside the image

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SyntheticFiles:
    """Where :func:`write_synthetic_kaggle` put its files."""

    training: Path
    """training.csv: 30 keypoint columns (empty = missing) and Image."""
    test: Path
    """test.csv: ImageId and Image."""
    lookup_table: Path
    """IdLookupTable.csv for the test set: RowId, ImageId, FeatureName (and an empty Location)."""
    test_keypoints: Path
    """test_keypoints.csv: ImageId and the 30 true keypoint columns of each test image."""


@dataclass(frozen=True, eq=False)
class SyntheticFaces:
    """Faces in memory, as :func:`generate_faces` draws them."""

    images: np.ndarray
    """uint8 [N, 96, 96]."""
    keypoints: np.ndarray
    """float32 [N, 30], all present (the truth the image was drawn around)."""
    present: np.ndarray
    """bool [N, 15]: which points the file lists (the others are written empty)."""

    def file_keypoints(self) -> np.ndarray:
        """float32 [N, 30] as the training file holds them: NaN where not present."""
        out = self.keypoints.copy()
        out[~np.repeat(self.present, 2, axis=1)] = np.nan
        return out


# ---------------------------------------------------------------- shapes

_MEAN = np.asarray(model.MEAN_SHAPE, np.float64)
_MODES = np.asarray(model.MODES, np.float64)
_MODE_SD = np.asarray(model.MODE_STDDEVS, np.float64)


def _pose_factor(group: str) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(model.POSE_MEAN[group], np.float64)
    cov = np.asarray(model.POSE_COVARIANCE[group], np.float64).reshape(4, 4)
    return mean, np.linalg.cholesky(cov)


_POSES = {group: _pose_factor(group) for group in model.POSE_MEAN}


def _patterns(table) -> tuple[np.ndarray, np.ndarray]:
    masks = np.array([m for m, _ in table], np.int64)
    counts = np.array([c for _, c in table], np.float64)
    present = (masks[:, None] >> np.arange(NUM_KEYPOINTS)) & 1
    return present.astype(bool), np.cumsum(counts) / counts.sum()


_TRAINING_PRESENCE = _patterns(model.TRAINING_PRESENCE)
_TEST_PRESENCE = _patterns(model.TEST_FEATURE_PRESENCE)


def _draw_presence(rng: np.random.Generator, n: int, table) -> np.ndarray:
    patterns, cdf = table
    return patterns[np.searchsorted(cdf, rng.random(n), side="right").clip(max=len(cdf) - 1)]


def _rowwise_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Broadcast and sum instead of BLAS, whose summation order (and so the last
    # bits) can depend on the machine: the same seed must give the same bytes.
    return (a[:, :, None] * b[None, :, :]).sum(axis=1)


def sample_keypoints(rng: np.random.Generator, complete: np.ndarray) -> np.ndarray:
    """Draws face shapes: float64 [N, 15, 2] pixel coordinates, every point at
    least 2 px inside the image. ``complete`` [N] picks each row's pose
    distribution (the real complete rows are posed more tightly than the rest)."""
    n = len(complete)
    out = np.empty((n, NUM_KEYPOINTS, 2))
    todo = np.arange(n)
    for _ in range(100):
        if len(todo) == 0:
            return out
        k = len(todo)
        coefficients = np.clip(rng.standard_normal((k, len(_MODE_SD))), -2.5, 2.5) * _MODE_SD
        shape = (_MEAN + _rowwise_matmul(coefficients, _MODES)).reshape(k, NUM_KEYPOINTS, 2)
        z = np.clip(rng.standard_normal((k, 4)), -2.5, 2.5)
        pose = np.empty((k, 4))
        for group, rows in (("complete", complete[todo]), ("partial", ~complete[todo])):
            mean, factor = _POSES[group]
            pose[rows] = mean + _rowwise_matmul(z[rows], factor.T)
        scale = np.exp(pose[:, 0])[:, None]
        c, s = np.cos(pose[:, 1])[:, None], np.sin(pose[:, 1])[:, None]
        x = scale * (c * shape[..., 0] - s * shape[..., 1]) + pose[:, 2:3]
        y = scale * (s * shape[..., 0] + c * shape[..., 1]) + pose[:, 3:4]
        points = np.stack([x, y], axis=-1)
        inside = ((points >= _MARGIN) & (points <= IMAGE_SIZE - _MARGIN)).all(axis=(1, 2))
        out[todo[inside]] = points[inside]
        todo = todo[~inside]
    raise RuntimeError("could not draw faces inside the image")  # pragma: no cover


# ---------------------------------------------------------------- generation


def _chunk_rng(seed: int, stream: int, chunk: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, chunk, GENERATOR_VERSION]))


_TRAINING_STREAM, _TEST_STREAM = 1, 2


def _faces_chunk(seed: int, stream: int, chunk: int, n: int) -> SyntheticFaces:
    rng = _chunk_rng(seed, stream, chunk)
    present = _draw_presence(rng, n, _TRAINING_PRESENCE if stream == _TRAINING_STREAM else _TEST_PRESENCE)
    points = sample_keypoints(rng, present.all(axis=1))
    # The file prints each coordinate to 12 significant digits: draw around the
    # printed values, so the file, the image and the arrays agree exactly.
    points = np.array([float(_coordinate_text(v)) for v in points.ravel()]).reshape(points.shape)
    images = render_faces(points, rng)
    return SyntheticFaces(images=images, keypoints=points.reshape(n, -1).astype(np.float32), present=present)


def _chunks(n: int) -> list[tuple[int, int]]:
    """(chunk number, faces in it) covering n faces."""
    return [(chunk, min(CHUNK, n - start)) for chunk, start in enumerate(range(0, n, CHUNK))]


def _worker_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _ordered_map(fn: Callable, jobs: list[tuple], threads: int | None = None) -> Iterator:
    """fn(*job) for each job, run on a thread pool (numpy releases the GIL in
    the array work), yielded in job order; at most 2 x threads results wait."""
    threads = threads or _worker_count()
    if threads == 1 or len(jobs) <= 1:
        yield from (fn(*job) for job in jobs)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fkd-synthetic") as pool:
        pending: collections.deque = collections.deque()
        for job in jobs:
            pending.append(pool.submit(fn, *job))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def generate_faces(n: int, seed: int = 0, *, test: bool = False) -> SyntheticFaces:
    """The first ``n`` training (or test) faces that :func:`write_synthetic_kaggle`
    writes for ``seed``, in memory."""
    _check_count("n", n)
    stream = _TEST_STREAM if test else _TRAINING_STREAM
    # Whole chunks, cut to n: a chunk's faces depend on its size.
    jobs = [(seed, stream, chunk, CHUNK) for chunk, _ in _chunks(n)]
    parts = list(_ordered_map(_faces_chunk, jobs))
    if not parts:
        return SyntheticFaces(
            np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8),
            np.zeros((0, 2 * NUM_KEYPOINTS), np.float32),
            np.zeros((0, NUM_KEYPOINTS), bool),
        )
    return SyntheticFaces(
        images=np.concatenate([p.images for p in parts])[:n],
        keypoints=np.concatenate([p.keypoints for p in parts])[:n],
        present=np.concatenate([p.present for p in parts])[:n],
    )


# ---------------------------------------------------------------- Kaggle text


def _coordinate_text(v: float) -> str:
    # The real training.csv prints coordinates as Python's repr of the value
    # rounded to 12 significant digits ("66.0335639098", "76.352", "48.0").
    return repr(float(f"{v:.12g}"))


def _pixel_table() -> tuple[np.ndarray, np.ndarray]:
    text = np.zeros((256, 4), np.uint8)
    length = np.zeros(256, np.int64)
    for value in range(256):
        token = f"{value} ".encode()
        text[value, : len(token)] = np.frombuffer(token, np.uint8)
        length[value] = len(token)
    return text, length


_PIXEL_TEXT, _PIXEL_LENGTH = _pixel_table()


def image_text(images: np.ndarray) -> list[bytes]:
    """The Image field of each image [B, 96, 96]: 9216 integers joined by single
    spaces. Vectorized: each pixel becomes its 4-byte token (digits, a space,
    zero padding), and dropping the zero bytes leaves the rows' text end to end."""
    flat = images.reshape(len(images), -1)
    tokens = _PIXEL_TEXT[flat]
    data = tokens[tokens != 0].tobytes()
    ends = np.cumsum(_PIXEL_LENGTH[flat].sum(axis=1))
    starts = np.concatenate([[0], ends[:-1]])
    return [data[a : b - 1] for a, b in zip(starts.tolist(), ends.tolist())]  # each without its last space


def _keypoint_fields(keypoints: np.ndarray, present: np.ndarray) -> list[bytes]:
    present_columns = np.repeat(present, 2, axis=1)
    return [
        ",".join(_coordinate_text(v) if p else "" for v, p in zip(row, mask)).encode()
        for row, mask in zip(keypoints.astype(np.float64).tolist(), present_columns.tolist())
    ]


def _training_header() -> bytes:
    return ",".join((*KEYPOINT_COLUMNS, "Image")).encode() + _EOL


def _check_count(name: str, n) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def write_synthetic_kaggle(
    directory: str | os.PathLike, *, n_train: int, n_test: int, seed: int, progress: Progress | None = None
) -> SyntheticFiles:
    """Writes a synthetic training.csv, test.csv and IdLookupTable.csv (and
    test_keypoints.csv, the test set's answers) into ``directory``.

    Args:
      directory: created if missing; existing files of these names are replaced
        (each written to a temporary file, then renamed).
      n_train, n_test: number of faces (0 is allowed).
      seed: any non-negative integer; the same seed gives the same bytes.
      progress: called as progress(faces_done, faces_total) after each chunk.
    """
    _check_count("n_train", n_train)
    _check_count("n_test", n_test)
    _check_count("seed", seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = SyntheticFiles(
        training=directory / TRAINING_FILE,
        test=directory / TEST_FILE,
        lookup_table=directory / LOOKUP_FILE,
        test_keypoints=directory / TEST_KEYPOINTS_FILE,
    )
    total, done = n_train + n_test, 0

    with atomic_write(files.training, "wb") as out:
        out.write(_training_header())
        jobs = [(seed, chunk, size) for chunk, size in _chunks(n_train)]
        for size, rows in _ordered_map(_training_rows, jobs):
            out.write(rows)
            done += size
            if progress:
                progress(done, total)

    lookup_rows: list[bytes] = []
    answers: list[bytes] = []
    with atomic_write(files.test, "wb") as out:
        out.write(b"ImageId,Image" + _EOL)
        jobs = [(seed, chunk, size) for chunk, size in _chunks(n_test)]
        for (_, chunk, _), (faces, pixel_rows) in zip(jobs, _ordered_map(_test_rows, jobs)):
            first_id = chunk * CHUNK + 1
            out.write(b"".join(f"{first_id + i},".encode() + row + _EOL for i, row in enumerate(pixel_rows)))
            columns = np.repeat(faces.present, 2, axis=1)
            for i, (keypoints, asked) in enumerate(zip(faces.keypoints.astype(np.float64).tolist(), columns.tolist())):
                image_id = first_id + i
                for column, wanted in zip(KEYPOINT_COLUMNS, asked):
                    if wanted:
                        lookup_rows.append(f"{len(lookup_rows) + 1},{image_id},{column}".encode() + _EOL)
                answers.append(f"{image_id},".encode() + ",".join(map(_coordinate_text, keypoints)).encode() + _EOL)
            done += len(pixel_rows)
            if progress:
                progress(done, total)

    with atomic_write(files.lookup_table, "wb") as out:
        out.write(b"RowId,ImageId,FeatureName,Location" + _EOL)
        out.writelines(lookup_rows)
    with atomic_write(files.test_keypoints, "wb") as out:
        out.write(",".join(("ImageId", *KEYPOINT_COLUMNS)).encode() + _EOL)
        out.writelines(answers)
    return files


def _training_rows(seed: int, chunk: int, size: int) -> tuple[int, bytes]:
    """One chunk of training.csv's rows, drawn and printed (runs on a worker thread)."""
    faces = _faces_chunk(seed, _TRAINING_STREAM, chunk, CHUNK)
    fields = _keypoint_fields(faces.keypoints[:size], faces.present[:size])
    return size, b"".join(f + b"," + p + _EOL for f, p in zip(fields, image_text(faces.images[:size])))


def _test_rows(seed: int, chunk: int, size: int) -> tuple[SyntheticFaces, list[bytes]]:
    """One chunk of test faces and their Image fields (runs on a worker thread)."""
    faces = _faces_chunk(seed, _TEST_STREAM, chunk, CHUNK)
    faces = SyntheticFaces(images=faces.images[:size], keypoints=faces.keypoints[:size], present=faces.present[:size])
    return faces, image_text(faces.images)
