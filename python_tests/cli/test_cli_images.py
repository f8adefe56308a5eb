"""fkd-ops predict --images and show --images: keypoints for users' own PNG and
JPEG files, in each image's own pixels, and one line per unusable file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fkd_ops import KEYPOINT_COLUMNS, cli
from fkd_ops.data.synthetic import generate_faces, write_synthetic_kaggle

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A linear network trained for one epoch on a few synthetic faces."""
    folder = tmp_path_factory.mktemp("images-run")
    files = write_synthetic_kaggle(folder / "data", n_train=96, n_test=0, seed=5)
    argv = ["train", "--model", "linear", "--data", str(files.training), "--epochs", "1", "--progress", "0"]
    assert cli.main([*argv, "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three synthetic faces: one as a plain 96 x 96 PNG, and the same face 2x
    larger in the middle of a wider JPEG and of a taller RGB PNG."""
    folder = tmp_path_factory.mktemp("photos")
    faces = generate_faces(3, seed=9).images
    Image.fromarray(faces[0]).save(folder / "a_plain.png")
    big = np.asarray(Image.fromarray(faces[0]).resize((192, 192), Image.Resampling.NEAREST))
    wide = np.full((192, 260), 90, np.uint8)
    wide[:, 34:226] = big
    Image.fromarray(wide).save(folder / "b_wide.jpg", quality=97)
    tall = np.full((250, 192, 3), 200, np.uint8)
    tall[29:221] = big[..., None]
    Image.fromarray(tall).save(folder / "c_tall.png")
    return folder


def test_predict_writes_each_images_keypoints_in_its_own_pixels(run, photos, tmp_path, capsys):
    out = tmp_path / "keypoints.csv"
    assert cli.main(["predict", str(run), "--images", str(photos), "--out", str(out)]) == 0
    assert "wrote the keypoints of 3 images" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table.columns) == ["image", "width", "height", *KEYPOINT_COLUMNS]
    assert [p.rsplit("/", 1)[-1] for p in table["image"]] == ["a_plain.png", "b_wide.jpg", "c_tall.png"]
    assert table[["width", "height"]].to_numpy().tolist() == [[96, 96], [260, 192], [192, 250]]
    points = table[list(KEYPOINT_COLUMNS)].to_numpy()
    # The same face, 2x larger and off the origin: the same keypoints, 2x and
    # shifted (up to what resampling and JPEG change in the network's input).
    plain = points[0]
    for row, (dx, dy) in ((1, (34, 0)), (2, (0, 29))):
        back = points[row].copy()
        back[0::2] -= dx
        back[1::2] -= dy
        np.testing.assert_allclose(back / 2, plain, atol=0.5)


def test_show_draws_the_images_with_their_keypoints(run, photos, tmp_path, capsys):
    out = tmp_path / "shown.png"
    argv = ["show", "--run", str(run), "--images", str(photos / "c_tall.png"), str(photos), "--count", "2"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "showing the first 2 of 4 images" in text and "wrote 2 images" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unusable_images_are_named_one_per_line_and_nothing_is_written(run, photos, tmp_path, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((photos / "b_wide.jpg").read_bytes()[:200])
    out = tmp_path / "keypoints.csv"
    assert cli.main(["predict", str(run), "--images", str(photos), str(broken), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"fkd-ops predict: error: {broken}: " + err[0].split(f"{broken}: ", 1)[1],
        "fkd-ops predict: error: 1 of 4 images cannot be used; nothing written",
    ]
    assert not out.exists()
    # A single bad file: one line naming it.
    assert cli.main(["predict", str(run), "--images", str(broken), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(broken) in err[0]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["show", "--images", "x.png"], ["--images needs --run"]),
        (["predict", "RUN", "--images", "x.png", "--test", "__file__"], ["--images", "--test"]),
        (["predict", "RUN", "--images", "no/such.png"], ["no/such.png", "no such file or folder"]),
    ],
)
def test_bad_image_arguments_end_with_one_line(argv, words, tmp_path, capsys, run):
    argv = [str(run) if a == "RUN" else str(tmp_path / "t.csv") if a == "__file__" else a for a in argv]
    (tmp_path / "t.csv").write_text("ImageId,Image\n")
    assert cli.main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err
