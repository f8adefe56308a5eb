"""Your own face images as the networks' input, and keypoints back on them.

A PNG or JPEG file of any size becomes one 96 x 96 grayscale face the way the
README states:

1. decoded by Pillow; the EXIF orientation is applied, so the image is upright
   as viewers show it (and coordinates refer to that upright image);
2. converted to 8-bit grayscale (Pillow's ITU-R 601 luma; transparent pixels
   are laid over white, 16-bit pixels scaled to 0..255);
3. cut to its largest centred square (side = the shorter edge);
4. resized to 96 x 96 (Pillow's bilinear filter, which averages over the
   source pixels when shrinking).

Keypoints predicted on the 96 x 96 face map back to the image's own pixels
exactly (:meth:`ImageFrame.to_image`): pixel column i spans [i, i + 1) in both,
so x_image = left + x * side / 96. No TensorFlow here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fkd_ops.keypoints import IMAGE_SIZE, NUM_COORDINATES

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
"""File endings taken from a folder (case-insensitive); files named one by one are
read whatever their name, as long as Pillow finds a PNG or JPEG inside."""

_FORMATS = ("PNG", "JPEG")  # the only decoders Pillow may try on a user's file
_DISPLAY_SIDE = 384  # display copies (for pictures) are shrunk to at most this many pixels


class ImageError(ValueError):
    """An image file that cannot be used; the message starts with its path and
    fits on one line."""


@dataclass(frozen=True)
class ImageFrame:
    """Where the 96 x 96 face came from: the image's size (upright) and the
    centred square that was resized to 96 x 96, in the image's pixels."""

    path: Path
    width: int
    height: int
    left: float
    top: float
    side: float

    @property
    def scale(self) -> float:
        """Image pixels per pixel of the 96 x 96 face."""
        return self.side / IMAGE_SIZE

    def to_image(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints [..., 30] on the 96 x 96 face (x, y interleaved) -> the same
        points in this image's pixels (NaN stays NaN)."""
        k = np.asarray(keypoints, dtype=np.float64)
        if k.shape[-1] != NUM_COORDINATES:
            raise ValueError(f"keypoints must end in {NUM_COORDINATES} coordinates, got shape {k.shape}")
        out = k * self.scale
        out[..., 0::2] += self.left
        out[..., 1::2] += self.top
        return out

    def to_face(self, keypoints: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_image`: image pixels -> the 96 x 96 face."""
        k = np.array(keypoints, dtype=np.float64)
        k[..., 0::2] -= self.left
        k[..., 1::2] -= self.top
        return k / self.scale


@dataclass(frozen=True, eq=False)
class FaceImages:
    """Images converted for the networks, in the order they were found."""

    faces: np.ndarray
    """uint8 [N, 96, 96]."""
    frames: list[ImageFrame]
    """How each face maps to its image."""
    displays: list[np.ndarray] | None = None
    """uint8 grayscale copies of the whole images, at most 384 pixels on a side
    (for drawing; stretch each over its frame's width x height), when asked for."""

    def to_images(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints [N, 30] on the faces -> each in its own image's pixels."""
        if len(keypoints) != len(self.frames):
            raise ValueError(f"got keypoints for {len(keypoints)} faces, but there are {len(self.frames)}")
        return np.stack([f.to_image(k) for f, k in zip(self.frames, keypoints)]) if self.frames else np.zeros((0, 30))


def find_images(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The image files named by ``paths``: a file stands for itself, a folder for
    its PNG and JPEG files (by name, sorted; not its subfolders).

    Raises:
      ImageError: a path that does not exist, or a folder with no PNG or JPEG file.
    """
    found: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            try:
                entries = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            except OSError as exc:
                raise ImageError(f"{path}: cannot list the folder: {exc.strerror or exc}") from None
            if not entries:
                raise ImageError(f"{path}: no PNG or JPEG files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            found.extend(entries)
        elif path.exists():
            found.append(path)
        else:
            raise ImageError(f"{path}: no such file or folder")
    return found


def _open_upright_gray(path: Path):
    """The image at ``path`` decoded, upright and in 8-bit grayscale (a Pillow image)."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        # Pillow warns (rather than fails) on pixel counts it finds suspicious; a
        # decompression bomb beyond twice that limit raises DecompressionBombError.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path, formats=_FORMATS) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # Pillow's own convert("L") clips 16-bit values at 255: scale them instead.
        wide = np.asarray(image, dtype=np.float32)  # exact for 16-bit values; half the memory of float64
        return Image.fromarray(np.clip(np.rint(wide / np.float32(257)), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    return image.convert("L")


def _describe(exc: BaseException) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not a PNG or JPEG image (or a damaged one)"
    if isinstance(exc, Image.DecompressionBombError):
        return f"too many pixels to decode safely ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read: {exc.strerror}"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    text = str(exc).strip().splitlines()
    return f"cannot decode: {text[0] if text else type(exc).__name__}"


def load_face(path: str | os.PathLike, *, display: bool = False) -> tuple[np.ndarray, ImageFrame, np.ndarray | None]:
    """One image file as a 96 x 96 face.

    Returns:
      (face uint8 [96, 96], its frame, a display copy or None).

    Raises:
      ImageError: the file cannot be read or decoded as a PNG or JPEG image; the
        message names the file.
    """
    from PIL import Image

    path = Path(path)
    try:
        gray = _open_upright_gray(path)
        width, height = gray.size
        if width < 1 or height < 1:
            raise ImageError(f"{path}: the image is empty ({width} x {height} pixels)")
        side = float(min(width, height))
        left, top = (width - side) / 2, (height - side) / 2
        face = gray.resize(
            (IMAGE_SIZE, IMAGE_SIZE),
            Image.Resampling.BILINEAR,
            box=(left, top, left + side, top + side),
            reducing_gap=3.0,  # shrink big photos in integer steps first: faster, same result within rounding
        )
        preview = None
        if display:
            preview = gray.copy()
            preview.thumbnail((_DISPLAY_SIDE, _DISPLAY_SIDE), Image.Resampling.BILINEAR)
            preview = np.asarray(preview, dtype=np.uint8)
        pixels = np.asarray(face, dtype=np.uint8)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, MemoryError, Image.DecompressionBombError) as exc:
        # Pillow reports damaged files as OSError, ValueError or SyntaxError
        # (a broken PNG chunk), depending on where decoding stops.
        raise ImageError(f"{path}: {_describe(exc)}") from None
    return pixels, ImageFrame(path, width, height, left, top, side), preview


def load_faces(
    paths: Sequence[str | os.PathLike],
    *,
    display: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FaceImages:
    """The images named by ``paths`` (files or folders, see :func:`find_images`)
    as 96 x 96 faces.

    All or nothing: every file is tried, and if any cannot be used, one
    :class:`ImageErrors` lists them all (one line each). ``progress`` is called
    as progress(files_done, files_total) after each file.
    """
    files = find_images(paths)
    faces, frames, displays, errors = [], [], [], []
    for done, path in enumerate(files, 1):
        try:
            face, frame, preview = load_face(path, display=display)
        except ImageError as exc:
            errors.append(exc)
        else:
            faces.append(face)
            frames.append(frame)
            displays.append(preview)
        if progress is not None:
            progress(done, len(files))
    if errors:
        raise ImageErrors(errors, len(files))
    stacked = np.stack(faces) if faces else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return FaceImages(stacked, frames, displays if display else None)


class ImageErrors(ImageError):
    """Some of the images cannot be used: ``errors`` holds one :class:`ImageError`
    per file; the message's first line says how many, the others name them."""

    def __init__(self, errors: list[ImageError], total: int):
        self.errors = errors
        lines = [f"{len(errors)} of {total} images cannot be used", *map(str, errors)]
        super().__init__("\n".join(lines))


def write_image_keypoints(path: str | os.PathLike, frames: Sequence[ImageFrame], keypoints: np.ndarray) -> None:
    """Writes ``image,width,height`` and the 30 keypoint columns (Kaggle's names,
    in each image's own pixels, 3 decimals), one row per image, atomically."""
    import csv

    from fkd_ops.files import atomic_write
    from fkd_ops.keypoints import KEYPOINT_COLUMNS

    points = np.asarray(keypoints, dtype=np.float64)
    if points.shape != (len(frames), NUM_COORDINATES):
        raise ValueError(
            f"keypoints must be [{len(frames)}, {NUM_COORDINATES}] for {len(frames)} images, got {points.shape}"
        )
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["image", "width", "height", *KEYPOINT_COLUMNS])
        for frame, row in zip(frames, points.tolist()):
            out.writerow([str(frame.path), frame.width, frame.height, *(f"{v:.3f}" for v in row)])
