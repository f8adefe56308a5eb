"""The synthetic Kaggle-format faces: exact format, determinism, round trip,
layouts and missing patterns like the real file, keypoints on their features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fkd_ops import KEYPOINT_COLUMNS, KEYPOINT_NAMES
from fkd_ops.data import face_shape_model as model
from fkd_ops.data import synthetic
from fkd_ops.data.kaggle_files import read_lookup_table, read_test, read_training
from fkd_ops.data.synthetic import generate_faces, write_synthetic_kaggle

FIXTURES = Path(__file__).parents[1] / "fixtures"
P = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """40 training faces (two chunks, the second partial) and 9 test faces."""
    return write_synthetic_kaggle(tmp_path_factory.mktemp("synthetic"), n_train=40, n_test=9, seed=7)


def test_same_seed_same_bytes(small_set, tmp_path):
    again = write_synthetic_kaggle(tmp_path, n_train=40, n_test=9, seed=7)
    for a, b in (
        (small_set.training, again.training),
        (small_set.test, again.test),
        (small_set.lookup_table, again.lookup_table),
        (small_set.test_keypoints, again.test_keypoints),
    ):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_other_seed_other_faces(small_set, tmp_path):
    other = write_synthetic_kaggle(tmp_path, n_train=40, n_test=0, seed=8)
    assert other.training.read_bytes() != small_set.training.read_bytes()


def test_smaller_set_is_a_prefix(small_set, tmp_path):
    fewer = write_synthetic_kaggle(tmp_path, n_train=33, n_test=4, seed=7)
    lines = small_set.training.read_bytes().split(b"\r\n")
    assert fewer.training.read_bytes() == b"\r\n".join(lines[:34]) + b"\r\n"
    test_lines = small_set.test.read_bytes().split(b"\r\n")
    assert fewer.test.read_bytes() == b"\r\n".join(test_lines[:5]) + b"\r\n"


def test_round_trip_gives_identical_arrays(small_set):
    faces = generate_faces(40, seed=7)
    training = read_training(small_set.training)
    np.testing.assert_array_equal(training.images, faces.images)
    np.testing.assert_array_equal(training.keypoints, faces.file_keypoints())
    test_faces = generate_faces(9, seed=7, test=True)
    test = read_test(small_set.test)
    np.testing.assert_array_equal(test.image_ids, np.arange(1, 10))
    np.testing.assert_array_equal(test.images, test_faces.images)
    answers = pd.read_csv(small_set.test_keypoints)
    assert list(answers.columns) == ["ImageId", *KEYPOINT_COLUMNS]
    np.testing.assert_array_equal(answers[list(KEYPOINT_COLUMNS)].to_numpy(np.float32), test_faces.keypoints)


def test_kaggle_byte_format(small_set):
    data = small_set.training.read_bytes()
    assert data.startswith((",".join(KEYPOINT_COLUMNS) + ",Image\r\n").encode())
    assert data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n") == 41
    row = data.split(b"\r\n")[1].decode()
    fields = row.split(",")
    assert len(fields) == 31
    for text in fields[:30]:
        # Coordinates as the real file prints them: Python's repr of the value
        # rounded to 12 significant digits, always with a decimal point.
        assert text == "" or (text == repr(float(f"{float(text):.12g}")) and "." in text)
    pixels = fields[30].split(" ")
    assert len(pixels) == 9216 and all(p == str(int(p)) and 0 <= int(p) <= 255 for p in pixels)

    test = small_set.test.read_bytes()
    assert test.startswith(b"ImageId,Image\r\n1,") and test.count(b"\r\n") == 10

    # The lookup table is shaped like the real one: same header, rows without Location.
    real = (FIXTURES / "IdLookupTable_excerpt.csv").read_bytes().split(b"\r\n")
    ours = small_set.lookup_table.read_bytes().split(b"\r\n")
    assert ours[0] == real[0] == b"RowId,ImageId,FeatureName,Location"
    assert ours[1] == real[1] == b"1,1,left_eye_center_x"
    table = read_lookup_table(small_set.lookup_table)
    np.testing.assert_array_equal(table["RowId"], np.arange(1, len(table) + 1))
    assert set(table["ImageId"]) == set(range(1, 10))


def test_lookup_asks_for_whole_points_in_column_order(small_set):
    table = read_lookup_table(small_set.lookup_table)
    faces = generate_faces(9, seed=7, test=True)
    for image_id, rows in table.groupby("ImageId"):
        asked = list(rows["FeatureName"])
        expected = [c for c, p in zip(KEYPOINT_COLUMNS, np.repeat(faces.present[image_id - 1], 2)) if p]
        assert asked == expected


def test_missing_patterns_follow_the_real_file():
    rng = np.random.default_rng(0)
    present = synthetic._draw_presence(rng, 20000, synthetic._TRAINING_PRESENCE)
    four = [P["left_eye_center"], P["right_eye_center"], P["nose_tip"], P["mouth_center_bottom_lip"]]
    only_four = present[:, four].all(axis=1) & (present.sum(axis=1) == 4)
    # The real file: 4755 of 7049 rows carry only these four points, 2140 all 15.
    assert abs(only_four.mean() - 4755 / 7049) < 0.015
    assert abs(present.all(axis=1).mean() - 2140 / 7049) < 0.015
    patterns = {m for m, _ in model.TRAINING_PRESENCE}
    masks = (present * (1 << np.arange(15))).sum(axis=1)
    assert set(masks.tolist()) <= patterns


def test_shapes_look_like_the_real_labels():
    rng = np.random.default_rng(1)
    complete = np.ones(4000, bool)
    points = synthetic.sample_keypoints(rng, complete)
    assert points.min() >= 2 and points.max() <= 94
    real_mean_complete = {  # means over the 2140 complete rows of the real training_keypoints.csv
        "left_eye_center": (66.22, 36.84),
        "nose_tip": (47.95, 57.25),
        "mouth_center_bottom_lip": (48.15, 82.63),
    }
    for name, (x, y) in real_mean_complete.items():
        mean = points[:, P[name]].mean(axis=0)
        assert abs(mean[0] - x) < 1.0 and abs(mean[1] - y) < 1.0, (name, mean)
    # The subject's left eye is on the image's right, above the nose, above the mouth.
    assert (points[:, P["left_eye_center"], 0] > points[:, P["right_eye_center"], 0]).mean() > 0.99
    assert (points[:, P["nose_tip"], 1] < points[:, P["mouth_center_bottom_lip"], 1]).mean() > 0.99


def test_keypoints_sit_on_their_features():
    """Pupils and the mouth's parting are darker than the cheeks; eyebrows are
    darker than the forehead just above them; the nose tip is lighter than its
    nostrils. Checked at the keypoints themselves, so a shifted drawing fails."""
    faces = generate_faces(96, seed=3)
    images = faces.images.astype(np.float64)
    kp = faces.keypoints.reshape(-1, 15, 2).astype(np.float64)

    def at(points):
        x = np.clip(np.floor(points[:, 0]).astype(int), 0, 95)
        y = np.clip(np.floor(points[:, 1]).astype(int), 0, 95)
        return images[np.arange(len(images)), y, x]

    left, right = kp[:, P["left_eye_center"]], kp[:, P["right_eye_center"]]
    iod = np.linalg.norm(left - right, axis=1)[:, None]
    nose = kp[:, P["nose_tip"]]
    cheek = (at((left + nose) / 2) + at((right + nose) / 2)) / 2
    pupils = (at(left) + at(right)) / 2
    assert (pupils < cheek - 5).mean() > 0.9
    mouth = (kp[:, P["mouth_center_top_lip"]] + kp[:, P["mouth_center_bottom_lip"]]) / 2
    assert (at(mouth) < cheek).mean() > 0.85
    # The arched brow stroke crosses the segment from the middle of its two ends
    # up by a quarter of its length.
    for side in ("left", "right"):
        inner, outer = kp[:, P[f"{side}_eyebrow_inner_end"]], kp[:, P[f"{side}_eyebrow_outer_end"]]
        chord = (inner + outer) / 2
        length = np.linalg.norm(outer - inner, axis=1)[:, None]
        darkest = np.min([at(chord - np.array([0.0, 1.0]) * f * length) for f in np.linspace(0, 0.25, 8)], axis=0)
        assert (darkest < cheek - 5).mean() > 0.85
    unit = (left - right) / iod
    nostrils = (at(nose + 0.16 * iod * unit + [0, 0.05] * iod) + at(nose - 0.16 * iod * unit + [0, 0.05] * iod)) / 2
    assert (at(nose) > nostrils).mean() > 0.85


def test_images_vary_like_photographs():
    faces = generate_faces(64, seed=4)
    means = faces.images.reshape(64, -1).mean(axis=1)
    contrasts = faces.images.reshape(64, -1).std(axis=1)
    assert 60 < means.mean() < 190 and means.std() > 10  # lighting and skin vary
    assert contrasts.min() > 5 and contrasts.std() > 3  # contrast varies
    assert len({im.tobytes() for im in faces.images}) == 64


def test_generate_faces_and_arguments():
    assert generate_faces(0).images.shape == (0, 96, 96)
    faces = generate_faces(3, seed=2)
    assert faces.images.dtype == np.uint8 and faces.keypoints.dtype == np.float32
    assert faces.present.shape == (3, 15) and not np.isnan(faces.keypoints).any()
    np.testing.assert_array_equal(np.isnan(faces.file_keypoints()), ~np.repeat(faces.present, 2, axis=1))
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="n_train must be a non-negative integer"):
            write_synthetic_kaggle("unused", n_train=bad, n_test=0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        write_synthetic_kaggle("unused", n_train=1, n_test=0, seed=-2)


def test_empty_sets_are_valid_files(tmp_path):
    files = write_synthetic_kaggle(tmp_path, n_train=0, n_test=0, seed=0)
    assert read_training(files.training).images.shape == (0, 96, 96)
    assert read_test(files.test).images.shape == (0, 96, 96)
    assert files.lookup_table.read_bytes() == b"RowId,ImageId,FeatureName,Location\r\n"
