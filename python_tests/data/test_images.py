"""Users' own images as 96 x 96 faces (fkd_ops.data.images): the conversion the
README states, keypoints mapped back to each image's pixels, and one error line
per unusable file."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fkd_ops import KEYPOINT_COLUMNS
from fkd_ops.data.images import (
    ImageError,
    ImageErrors,
    find_images,
    load_face,
    load_faces,
    write_image_keypoints,
)
from fkd_ops.data.synthetic import generate_faces


@pytest.fixture(scope="module")
def face():
    faces = generate_faces(1, seed=11)
    return faces.images[0], faces.keypoints[0]


def test_centre_square_is_cut_and_resized(tmp_path):
    # 300 x 120 RGB: white in the centred 120 x 120 square, black outside it.
    pixels = np.zeros((120, 300, 3), np.uint8)
    pixels[:, 90:210] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    face, frame, _ = load_face(tmp_path / "wide.png")
    assert face.shape == (96, 96) and face.dtype == np.uint8
    # The filter reaches a little past the square's edges, so only the edge
    # columns blend in the black outside it.
    assert face[:, 1:-1].min() == 255 and 200 < face[:, [0, -1]].min() < 255
    assert (frame.width, frame.height, frame.left, frame.top, frame.side) == (300, 120, 90.0, 0.0, 120.0)
    # A tall image keeps its middle rows; an odd difference gives a half-pixel offset.
    Image.fromarray(np.zeros((101, 50), np.uint8)).save(tmp_path / "tall.png")
    _, frame, _ = load_face(tmp_path / "tall.png")
    assert (frame.left, frame.top, frame.side) == (0.0, 25.5, 50.0)


def test_keypoints_map_back_to_the_image_exactly(tmp_path):
    Image.fromarray(np.zeros((120, 300), np.uint8)).save(tmp_path / "wide.png")
    _, frame, _ = load_face(tmp_path / "wide.png")
    points = np.full(30, np.nan)
    points[:6] = [0, 0, 48, 48, 96, 96]  # the face's corners and centre, pixel edges at 0 and 96
    mapped = frame.to_image(points)
    np.testing.assert_array_equal(mapped[:6], [90, 0, 150, 60, 210, 120])
    assert np.isnan(mapped[6:]).all()
    np.testing.assert_allclose(frame.to_face(mapped)[:6], points[:6])
    with pytest.raises(ValueError, match="30 coordinates"):
        frame.to_image(np.zeros(4))


def test_an_enlarged_face_comes_back_as_the_face(tmp_path, face):
    """A face shown 3x larger in the middle of a wider photo is found again: the
    96 x 96 input is the face (up to resampling) and its keypoints land 3x as far
    from the square's corner in the photo."""
    image, keypoints = face
    photo = np.full((288, 400), 128, np.uint8)
    photo[:, 56:344] = np.asarray(Image.fromarray(image).resize((288, 288), Image.Resampling.NEAREST))
    Image.fromarray(photo).save(tmp_path / "photo.png")
    got, frame, _ = load_face(tmp_path / "photo.png")
    assert np.abs(got.astype(int) - image.astype(int)).mean() < 3
    expected = keypoints.astype(np.float64) * 3
    expected[0::2] += 56
    np.testing.assert_allclose(frame.to_image(keypoints), expected, rtol=0, atol=1e-9)


def test_exif_orientation_makes_the_image_upright(tmp_path):
    # Upright: 60 wide, 40 high, a white block in the top-left corner. Stored
    # turned a quarter to the left, with Orientation 6 ("turn 90 degrees
    # clockwise to view"), as phones store portraits.
    upright = np.zeros((40, 60), np.uint8)
    upright[:10, :10] = 255
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (40, 60)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    face, frame, display = load_face(tmp_path / "phone.jpg", display=True)
    assert (frame.width, frame.height) == (60, 40)
    assert display.shape == (40, 60)
    assert display[:8, :8].mean() > 200 and display[-10:, -10:].mean() < 50
    # The centred 40 x 40 square starts at x = 10, right of the block: the face does not show it.
    assert face[:, 4:].max() < 40 and frame.left == 10.0


def test_colour_alpha_and_16_bit_become_8_bit_grey(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 0] = 200  # red, half of it transparent
    rgba[:, :10, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    face, _, _ = load_face(tmp_path / "alpha.png")
    opaque_red = round(200 * 299 / 1000)  # ITU-R 601 luma of (200, 0, 0)
    assert abs(int(face[48, 10]) - opaque_red) <= 1 and face[48, 90] == 255  # transparent: over white
    wide = np.full((20, 20), 40000, np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    face, _, _ = load_face(tmp_path / "deep.png")
    assert abs(int(face.mean()) - round(40000 / 257)) <= 1  # scaled, not clipped at 255


def test_folders_give_their_png_and_jpeg_files_sorted(tmp_path, face):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("b.JPG", "a.png", "c.jpeg"):
        Image.fromarray(face[0]).save(folder / name, format="JPEG" if name[-4:].lower() != ".png" else "PNG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    single = tmp_path / "single.png"
    Image.fromarray(face[0]).save(single)
    found = find_images([folder, single])
    assert [p.name for p in found] == ["a.png", "b.JPG", "c.jpeg", "single.png"]
    seen = []
    loaded = load_faces([folder, single], progress=lambda done, total: seen.append((done, total)))
    assert loaded.faces.shape == (4, 96, 96) and loaded.displays is None
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [f.path.name for f in loaded.frames] == ["a.png", "b.JPG", "c.jpeg", "single.png"]
    with pytest.raises(ImageError, match="no such file or folder"):
        find_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match=r"empty: no PNG or JPEG files"):
        find_images([tmp_path / "empty"])


def test_unusable_files_are_each_named_on_one_line(tmp_path, face):
    good = tmp_path / "good.png"
    Image.fromarray(face[0]).save(good)
    text = tmp_path / "text.png"
    text.write_text("hello")
    buffer = io.BytesIO()
    Image.fromarray(face[0]).save(buffer, format="PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(buffer.getvalue()[:300])
    gif = tmp_path / "anim.gif"
    Image.fromarray(face[0]).save(gif)
    with pytest.raises(ImageErrors) as caught:
        load_faces([good, text, truncated, gif])
    errors = caught.value.errors
    assert [str(e).split(":")[0] for e in errors] == [str(text), str(truncated), str(gif)]
    assert all(len(str(e).splitlines()) == 1 for e in errors)
    assert "not a PNG or JPEG image" in str(errors[0]) and "not a PNG or JPEG image" in str(errors[2])
    assert str(caught.value).splitlines()[0] == "3 of 4 images cannot be used"


def test_keypoint_csv(tmp_path, face):
    Image.fromarray(np.zeros((50, 80), np.uint8)).save(tmp_path / "a,b.png")  # a comma in the name
    loaded = load_faces([tmp_path / "a,b.png"])
    points = loaded.to_images(np.full((1, 30), 48.0))
    out = tmp_path / "out" / "keypoints.csv"
    write_image_keypoints(out, loaded.frames, points)
    table = pd.read_csv(out)
    assert list(table.columns) == ["image", "width", "height", *KEYPOINT_COLUMNS]
    assert table["image"].tolist() == [str(tmp_path / "a,b.png")]
    assert table.loc[0, "left_eye_center_x"] == 40.0 and table.loc[0, "left_eye_center_y"] == 25.0
    assert [p.name for p in out.parent.iterdir()] == ["keypoints.csv"]  # no temporary file left
    with pytest.raises(ValueError, match=r"keypoints must be \[1, 30\]"):
        write_image_keypoints(out, loaded.frames, np.zeros((2, 30)))
