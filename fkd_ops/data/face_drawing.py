"""Drawing grayscale faces around 15 keypoints, vectorized over a batch.

Every keypoint sits on the feature it names: the pupil and iris are centred on
the eye centre; each eye's almond (between the lids) ends at its inner and
outer corners; each eyebrow stroke ends at its inner and outer ends; the nose
tip is the highlight between the nostrils; the lips end at the mouth corners,
the upper lip's top edge passes through the top-lip point and the lower lip's
bottom edge through the bottom-lip point.

What makes them look like photographs (judged against real faces with
``benchmarks/realism.py``, by label-free statistics of the set): the head fills
the frame as in the competition's tight crops, with people's proportions in eye
distances (cheekbones about 1.1 either side, narrowing to the jaw, the chin at or
below the bottom edge, so the corners beside the jaw show the background), an
open forehead up to the top edge and hair down the temples, turned with the face
(the nose's offset from between the eyes shifts the head outline); mostly light
walls; the skin is lit as a surface, a height field of skull, brow ridge, eye
sockets, nose, cheekbones, lips and chin shaded by one mostly frontal light
(ambient, diffuse and a specular sheen), with shade beside the nose's bridge and
in the folds to the mouth's corners, and blotchy and fine texture; textured hair
of many cuts, colours and hairlines;
eyes with lids, lashes, iris, pupil and catchlight; thick textured eyebrows;
lips with an open mouth and teeth when the keypoints part them; beards,
moustaches and stubble; glasses of several shapes with glare; backgrounds from
plain walls to cluttered rooms; and a camera: exposure, contrast, gamma,
vignetting, a toe above black, blur, signal-dependent noise and JPEG's 8 x 8
block quantization.

Speed: the whole-image layers (background, hair, skin, light) are computed on
[B, 96, 96]; each facial feature only in a per-face window around it, cut from
a padded canvas, sized for the largest such feature in the batch. Every feature
fades to exactly zero within its window (no Gaussian tails), so the pixels do
not depend on the window sizes or on how faces are batched. All arithmetic is
elementwise numpy (no BLAS), so the bits do not depend on a linear-algebra library.
"""

from __future__ import annotations

import numpy as np

from fkd_ops.keypoints import IMAGE_SIZE, KEYPOINT_NAMES

_P = {name: i for i, name in enumerate(KEYPOINT_NAMES)}
_PAD = 48  # canvas margin: a window around any keypoint stays on the canvas
_CANVAS = IMAGE_SIZE + 2 * _PAD
_CENTRES = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5  # pixel centres
_F = np.float32


def _col(v) -> np.ndarray:
    """Per-face values [B] as float32 [B, 1, 1], to broadcast over pixels."""
    return np.asarray(v, np.float32)[:, None, None]


def _coverage(d: np.ndarray) -> np.ndarray:
    """Fraction of a pixel inside a shape, from the signed distance d (pixels,
    positive inside) of its centre to the edge: a one-pixel anti-aliased ramp."""
    # minimum/maximum rather than np.clip: the same values, less overhead per call.
    return np.minimum(np.maximum(d + _F(0.5), _F(0.0)), _F(1.0))


def _bump(r2: np.ndarray) -> np.ndarray:
    """A smooth blob of compact support: (1 - r^2)^2 inside r < 1, 0 outside."""
    return np.square(np.maximum(_F(1.0) - r2, _F(0.0)))


def _per_face(v) -> np.ndarray:
    """A number, or per-face values [B] as [B, 1, 1]: either broadcasts over pixels."""
    v = np.asarray(v, np.float32)
    return v if v.ndim == 0 else v[:, None, None]


def _blob(u: np.ndarray, v: np.ndarray, cu, cv, ru, rv) -> np.ndarray:
    """_bump of the ellipse centred at (cu, cv) with semi-axes (ru, rv) (numbers or [B])."""
    du = (u - _per_face(cu)) / _per_face(ru)
    dv = (v - _per_face(cv)) / _per_face(rv)
    return _bump(du * du + dv * dv)


def _paint(img: np.ndarray, coverage: np.ndarray, value) -> None:
    """img = img * (1 - coverage) + value * coverage, in place."""
    img += coverage * (value - img)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length = np.linalg.norm(v, axis=-1)
    return v / np.maximum(length, 1e-6)[:, None], length


def _perp(axis: np.ndarray) -> np.ndarray:
    """The axis turned 90 degrees: (1, 0) -> (0, 1), i.e. down the image."""
    return np.stack([-axis[:, 1], axis[:, 0]], axis=1)


class _Window:
    """A square window per face, centred near `centre` [B, 2] and at least
    2 * `reach` [B] pixels wide, cut from the canvas [B, H, W] (image pixel
    (0, 0) at canvas (_PAD, _PAD)). X [B, 1, S] and Y [B, S, 1] are the image
    coordinates of its pixel centres; `pixels` is a copy that `commit` writes back."""

    def __init__(self, canvas: np.ndarray, centre: np.ndarray, reach: np.ndarray):
        size = int(np.ceil(2 * float(np.max(reach, initial=1.0)))) + 2
        size = min(size, _CANVAS)
        origin = np.floor(centre).astype(np.int64) - size // 2 + _PAD
        origin = np.clip(origin, 0, _CANVAS - size)
        self._origin = origin.tolist()
        self._size = size
        steps = np.arange(size, dtype=np.float32) + _F(0.5 - _PAD)
        self.X = (origin[:, 0, None].astype(np.float32) + steps)[:, None, :]
        self.Y = (origin[:, 1, None].astype(np.float32) + steps)[:, :, None]
        self._canvas = canvas
        # Slicing face by face copies whole rows: cheaper than fancy indexing.
        self.pixels = np.stack([canvas[i, y : y + size, x : x + size] for i, (x, y) in enumerate(self._origin)])

    def frame(self, origin: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates in a per-face frame: u along the unit axis [B, 2], v at +90 degrees."""
        dx = self.X - _col(origin[:, 0])
        dy = self.Y - _col(origin[:, 1])
        ax, ay = _col(axis[:, 0]), _col(axis[:, 1])
        return dx * ax + dy * ay, dy * ax - dx * ay

    def distance(self, point: np.ndarray) -> np.ndarray:
        return np.sqrt(np.square(self.X - _col(point[:, 0])) + np.square(self.Y - _col(point[:, 1])))

    def commit(self) -> None:
        size = self._size
        for i, (x, y) in enumerate(self._origin):
            self._canvas[i, y : y + size, x : x + size] = self.pixels[i]


class _Full:
    """The whole image [B, 96, 96] with the same interface as _Window."""

    X = _CENTRES[None, None, :]
    Y = _CENTRES[None, :, None]
    frame = _Window.frame
    distance = _Window.distance


def _on_canvas(img: np.ndarray) -> np.ndarray:
    canvas = np.zeros((len(img), _CANVAS, _CANVAS), np.float32)
    canvas[:, _PAD:-_PAD, _PAD:-_PAD] = img
    return canvas


def _off_canvas(canvas: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(canvas[:, _PAD:-_PAD, _PAD:-_PAD])


def _upsample(grid: np.ndarray) -> np.ndarray:
    """Bilinear upsampling of per-face grids [B, rows, cols] to [B, 96, 96]
    (elementwise, so the bits do not depend on a BLAS library)."""
    out = grid
    for axis, cells in ((1, grid.shape[1]), (2, grid.shape[2])):  # rows first: the small intermediate
        pos = (_CENTRES / IMAGE_SIZE) * (cells - 1)
        lo = np.clip(np.floor(pos).astype(int), 0, max(cells - 2, 0))
        hi = np.minimum(lo + 1, cells - 1)
        shape = [1, 1, 1]
        shape[axis] = IMAGE_SIZE
        frac = (pos - lo).astype(np.float32).reshape(shape)
        low = np.take(out, lo, axis=axis)
        out = low + (np.take(out, hi, axis=axis) - low) * frac
    return out


def _smooth_noise(rng: np.random.Generator, b: int, cells: int, cols: int | None = None) -> np.ndarray:
    """Smooth random fields [B, 96, 96] in about [-1, 1]: a grid of normals
    (cells rows by `cols` columns, default square), bilinearly upsampled. A grid
    with many more columns than rows gives vertical streaks (hair strands)."""
    grid = rng.standard_normal((b, cells, cols or cells)).astype(np.float32)
    return _upsample(grid) * _F(0.6)


def _gaussian_blur(img: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Per-image Gaussian blur (sigma in pixels, up to about 1.3; 0 = none):
    separable 9-tap kernels, reflected borders."""
    r = 4
    taps = np.arange(-r, r + 1, dtype=np.float64)
    kernel = np.exp(-np.square(taps)[None, :] / (2 * np.square(np.maximum(sigma, 1e-3))[:, None]))
    kernel = (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32)
    n = img.shape[1]
    padded = np.pad(img, ((0, 0), (r, r), (0, 0)), mode="reflect")
    out = sum(_col(kernel[:, j]) * padded[:, j : j + n, :] for j in range(2 * r + 1))
    padded = np.pad(out, ((0, 0), (0, 0), (r, r)), mode="reflect")
    return sum(_col(kernel[:, j]) * padded[:, :, j : j + n] for j in range(2 * r + 1))


# ---------------------------------------------------------------- the camera's JPEG


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    m = np.cos((2 * n + 1) * k * np.pi / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m.astype(np.float32)


_DCT = _dct_matrix()
# JPEG's standard luminance quantization table (ITU T.81, Annex K), for quality 50.
_JPEG_TABLE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float32,
)


def _blocks_times(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """M @ block for every 8 x 8 block of x [N, 8, 8], as eight multiply-adds of
    whole arrays (no BLAS: the bits do not depend on a linear-algebra library)."""
    out = m[None, :, 0, None] * x[:, None, 0, :]
    for n in range(1, 8):
        out += m[None, :, n, None] * x[:, None, n, :]
    return out


def _jpeg(img: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Round trip of 8-bit images [B, 96, 96] (0..255 floats) through JPEG's
    luminance coding at per-image quality 1..100: 8 x 8 DCT, quantization by the
    standard table scaled as libjpeg scales it, inverse DCT."""
    b = len(img)
    scale = np.where(quality < 50, 5000 / quality, 200 - 2 * quality) / 100
    table = np.clip(np.floor(_JPEG_TABLE[None] * scale[:, None, None].astype(np.float32) + _F(0.5)), 1, 255)
    blocks = (img - _F(128)).reshape(b, 12, 8, 12, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 8, 8)
    # D @ X @ D.T, and back with D.T @ C @ D, the second product through transposes.
    coefficients = _blocks_times(_blocks_times(blocks, _DCT).transpose(0, 2, 1), _DCT).transpose(0, 2, 1)
    table = np.repeat(table, 144, axis=0)
    coefficients = np.rint(coefficients / table) * table
    blocks = _blocks_times(_blocks_times(coefficients, _DCT.T).transpose(0, 2, 1), _DCT.T).transpose(0, 2, 1)
    return blocks.reshape(b, 12, 12, 8, 8).transpose(0, 1, 3, 2, 4).reshape(b, 96, 96) + _F(128)


# ---------------------------------------------------------------- features


def _draw_eye(canvas, rng, centre, corner_a, corner_b, skin, iod, light_side):
    """An almond from corner to corner, with iris and pupil centred on the eye
    centre, a socket shadow, a lid crease, lashes, a lower lid and a catchlight."""
    b = len(centre)
    first_left = (corner_a[:, 0] <= corner_b[:, 0])[:, None]
    left, right = np.where(first_left, corner_a, corner_b), np.where(first_left, corner_b, corner_a)
    axis, width = _unit(right - left)
    half = np.maximum(width / 2, 1.0)
    mid = (left + right) / 2
    # Open the lids enough to uncover the eye centre, wherever it lies.
    rel = centre - mid
    ue = np.clip((rel * axis).sum(1) / half, -0.8, 0.8)
    ve = rel[:, 1] * axis[:, 0] - rel[:, 0] * axis[:, 1]
    bulge_e = 1.0 - ue**2
    h_up = np.maximum(half * rng.uniform(0.36, 0.6, b), (-ve + 0.3 * half) / bulge_e)
    h_lo = np.maximum(half * rng.uniform(0.2, 0.36, b), (ve + 0.25 * half) / bulge_e)
    socket_depth = rng.uniform(0.05, 0.25, b)
    crease_width = 0.6 + 0.04 * iod
    sclera = rng.uniform(0.55, 0.85, b) * (0.7 + 0.3 * skin)
    iris_r = half * rng.uniform(0.5, 0.65, b)
    iris = rng.uniform(0.04, 0.25, b)
    glint_on = rng.random(b) < 0.8
    lash_width = rng.uniform(1.0, 2.0, b)
    lash = rng.uniform(0.02, 0.12, b)
    lower_lid = rng.uniform(0.0, 0.25, b)
    bag = rng.uniform(0.0, 0.12, b)

    reach_u = 1.6 * half + 1
    reach_v = np.maximum(h_up + 0.35 * half + crease_width, 1.35 * half) + 2
    w = _Window(canvas, mid, np.hypot(reach_u, reach_v))
    img = w.pixels
    u, v = w.frame(mid, axis)
    u = u / _col(half)
    bulge = np.maximum(_F(1.0) - u * u, _F(0.0))
    v_up, v_lo = -_col(h_up) * bulge, _col(h_lo) * bulge
    inside_ends = _coverage(_col(half) * (_F(1.0) - np.abs(u)))
    almond = _coverage(v - v_up) * _coverage(v_lo - v) * inside_ends

    su = u / _F(1.6)
    sv = (v + _col(0.25 * half)) / _col(1.1 * half)
    img *= _F(1.0) - _col(socket_depth) * _bump(su * su + sv * sv)
    bu, bv = u / _F(1.2), (v - _col(h_lo + 0.35 * half)) / _col(0.35 * half)
    img *= _F(1.0) - _col(bag) * _bump(bu * bu + bv * bv)  # the shadow of the lower lid
    crease = _coverage(_col(crease_width) - np.abs(v - (v_up - _col(0.35 * half)))) * inside_ends
    _paint(img, crease * _F(0.4), _col(skin) * _F(0.5))

    _paint(img, almond, _col(sclera))
    distance = w.distance(centre)
    _paint(img, _coverage(_col(iris_r) - distance) * almond, _col(iris))
    _paint(img, _coverage(_col(0.45 * iris_r) - distance) * almond, _F(0.03))
    # The upper lid's shadow on the eyeball: the top of the almond is darker.
    shadow = np.clip((v - v_up) / _col(0.5 * half), _F(0), _F(1))
    img *= _F(1.0) - _F(0.35) * almond * (_F(1.0) - shadow)
    glint = centre + np.stack([-light_side, -np.ones(b)], 1) * (0.3 * iris_r)[:, None]
    _paint(img, _coverage(_col(0.25 * iris_r) - w.distance(glint)) * almond * _col(glint_on), _F(0.95))
    lashes = _coverage(_col(lash_width) - np.abs(v - v_up)) * _coverage(_col(half) * (_F(1.06) - np.abs(u)))
    _paint(img, lashes, _col(lash))
    lower = _coverage(_F(0.6) - np.abs(v - v_lo)) * inside_ends
    _paint(img, lower * _col(lower_lid), _col(lash))
    w.commit()


def _draw_eyebrow(canvas, rng, inner, outer, iod, colour):
    """A tapering, arched, textured stroke whose ends are the two eyebrow keypoints."""
    b = len(inner)
    inner_left = (inner[:, 0] <= outer[:, 0])[:, None]
    left, right = np.where(inner_left, inner, outer), np.where(inner_left, outer, inner)
    axis, length = _unit(right - left)
    length = np.maximum(length, 1.0)
    arch = length * rng.uniform(0.06, 0.2, b)
    thick_inner = iod * rng.uniform(0.12, 0.2, b)
    strength = rng.uniform(0.8, 1.0, b)
    hairs = rng.uniform(0.0, 0.25, b)
    phase = rng.uniform(0, 2 * np.pi, b)

    mid = (left + right) / 2
    w = _Window(canvas, mid, np.hypot(length / 2 + 2, arch + thick_inner + 2))
    u, v = w.frame(left, axis)
    t = u / _col(length)  # 0 at the image-left end, 1 at the right
    centre_line = _F(-4.0) * _col(arch) * t * (_F(1.0) - t)
    from_inner = np.where(_col(inner_left[:, 0]), t, _F(1.0) - t)
    thickness = _col(thick_inner) * (_F(1.0) - _F(0.55) * np.clip(from_inner, _F(0), _F(1)))
    # Soft top and bottom edges, and hair texture along the stroke.
    across = np.abs(v - centre_line) / np.maximum(thickness / 2, _F(0.5))
    density = np.clip(_F(1.6) - _F(1.2) * across, _F(0), _F(1))
    texture = _F(1.0) - _col(hairs) * (_F(0.5) + _F(0.5) * np.sin(_F(2.4) * u + _F(1.3) * v + _col(phase)))
    stroke = density * texture * _coverage(u) * _coverage(_col(length) - u)
    _paint(w.pixels, stroke * _col(strength), _col(colour))
    w.commit()


def _draw_nose(canvas, rng, tip, ux, iod, skin):
    """Nostrils either side of and just below the tip, a highlight on the tip
    and a shadow under it (the bridge and the wings are shaped by the light)."""
    b = len(tip)
    spread = iod * rng.uniform(0.13, 0.18, b)
    under_depth = rng.uniform(0.15, 0.35, b)
    highlight = rng.uniform(0.0, 0.08, b)
    nostril_dark = rng.uniform(0.1, 0.45, b)

    w = _Window(canvas, tip, np.maximum(spread + 0.2 * iod, 0.3 * iod) + 2)
    img = w.pixels
    u, v = w.frame(tip, ux)
    k = _col(iod)
    for side in (-1.0, 1.0):
        du, dv = u - _F(side) * _col(spread), v - _F(0.05) * k
        nostril = _F(1.0) - np.sqrt(np.square(du / (_F(0.06) * k)) + np.square(dv / (_F(0.035) * k)))
        _paint(img, _coverage(nostril * _F(0.05) * k) * _F(0.85), _col(skin * nostril_dark))
    uu, uv = u / (_F(0.2) * k), (v - _F(0.13) * k) / (_F(0.07) * k)
    img *= _F(1.0) - _col(under_depth) * _bump(uu * uu + uv * uv)
    hu, hv = u / (_F(0.13) * k), (v + _F(0.05) * k) / (_F(0.11) * k)
    img += _col(highlight) * _bump(hu * hu + hv * hv)
    w.commit()


def _draw_mouth(canvas, rng, left_corner, right_corner, top, bottom, skin):
    """Lips from corner to corner: the upper lip's top edge through the top-lip
    keypoint, the lower lip's bottom edge through the bottom-lip keypoint, a dark
    line (or an open mouth, some with teeth) between them, dark corners."""
    b = len(top)
    swap = (left_corner[:, 0] < right_corner[:, 0])[:, None]  # the subject's left is on the image's right
    a, c = np.where(swap, left_corner, right_corner), np.where(swap, right_corner, left_corner)
    axis, width = _unit(c - a)
    half = np.maximum(width / 2, 1.0)
    mid = (a + c) / 2

    def at(point):
        rel = point - mid
        return (np.clip((rel * axis).sum(1) / half, -0.7, 0.7), rel[:, 1] * axis[:, 0] - rel[:, 0] * axis[:, 1])

    ut, vt = at(top)
    ub, vb = at(bottom)
    top_peak, bottom_peak = vt / (1 - ut**2), vb / (1 - ub**2)
    thickness = np.maximum(vb - vt, 0.5)
    parting_peak = vt + rng.uniform(0.36, 0.46, b) * thickness
    upper_shade = rng.uniform(0.5, 0.75, b)
    lower_shade = np.minimum(upper_shade + rng.uniform(0.0, 0.15, b), 0.95)
    line = rng.uniform(0.4, 0.9, b)
    gap = np.clip(thickness - 0.75 * half, 0.0, None) * 0.45  # lips far apart: an open mouth
    inside = rng.uniform(0.03, 0.2, b)
    teeth_on = (gap > 2.0) & (rng.random(b) < 0.75)
    teeth = rng.uniform(0.6, 0.9, b)

    reach_v = np.maximum(np.abs(top_peak), np.abs(bottom_peak) + 0.4 * half) + 2
    w = _Window(canvas, mid, np.hypot(half + 3, reach_v))
    img = w.pixels
    u, v = w.frame(mid, axis)
    u = u / _col(half)
    bulge = np.maximum(_F(1.0) - u * u, _F(0.0))
    top_edge, bottom_edge = _col(top_peak) * bulge, _col(bottom_peak) * bulge
    parting = _col(parting_peak) * bulge
    ends = _coverage(_col(half) * (_F(1.0) - np.abs(u)))
    lips = _coverage(v - top_edge) * _coverage(bottom_edge - v) * ends
    lower = (v > parting).astype(np.float32)
    _paint(img, lips * _F(0.85), _col(skin) * (_col(upper_shade) * (_F(1) - lower) + _col(lower_shade) * lower))
    opening = _coverage(np.maximum(_col(gap) * bulge, _F(0.5)) - np.abs(v - parting)) * ends
    _paint(img, opening * np.maximum(_col(line), _col(gap > 0)), _col(inside))
    _paint(img, opening * (v < parting) * _col(teeth_on) * (bulge > 0.25), _col(teeth))
    for side in (-1.0, 1.0):  # the corners of the mouth, in shadow
        cu, cv = (u - _F(side)) / _F(0.16), v / _col(0.12 * half + 0.8)
        img *= _F(1.0) - _F(0.45) * _bump(cu * cu + cv * cv)
    su, sv = u / _F(0.75), (v - bottom_edge - _col(0.2 * half)) / _col(0.15 * half)
    img *= _F(1.0) - _F(0.25) * _bump(su * su + sv * sv)  # shadow under the lower lip
    w.commit()


def _draw_glasses(img, rng, keypoints, iod):
    """Frames around both eye centres (round to rectangular), a bridge, and glare
    on the lenses (img: whole images)."""
    b = len(img)
    frame_colour = np.where(rng.random(b) < 0.7, rng.uniform(0.02, 0.25, b), rng.uniform(0.6, 0.95, b))
    thickness = _col(rng.uniform(0.6, 1.8, b))
    radius_u = iod * rng.uniform(0.34, 0.46, b)
    radius_v = radius_u * rng.uniform(0.6, 0.85, b)
    power = _col(rng.uniform(2.0, 5.0, b))  # 2: ellipse; higher: rounded rectangle
    lens = rng.uniform(-0.06, 0.08, b)
    glare = rng.uniform(0.0, 0.35, (2, b)) * (rng.random(b) < 0.5)
    glare_angle = rng.uniform(0, np.pi, b)
    eyes = keypoints[:, [_P["left_eye_center"], _P["right_eye_center"]]]
    axis, _ = _unit(eyes[:, 0] - eyes[:, 1])
    lift = _perp(axis) * (0.05 * iod)[:, None]
    full = _Full()
    for k in range(2):
        u, v = full.frame(eyes[:, k] - lift, axis)
        r = (np.abs(u / _col(radius_u)) ** power + np.abs(v / _col(radius_v)) ** power) ** (_F(1) / power)
        inside = _coverage((_F(1.0) - r) * _col(radius_v))
        img += inside * _col(lens)
        streak = np.abs(u * _col(np.cos(glare_angle)) + v * _col(np.sin(glare_angle)) - _col(0.3 * radius_u))
        img += inside * _col(glare[k]) * np.clip(_F(1.0) - streak / _col(0.35 * radius_u), _F(0), _F(1))
        _paint(img, _coverage(thickness / 2 - np.abs(r - _F(1.0)) * _col(radius_v)), _col(frame_colour))
    u, v = full.frame((eyes[:, 0] + eyes[:, 1]) / 2 - lift, axis)
    bridge = _coverage(thickness / 2 - np.abs(v + _col(0.15 * radius_v))) * _coverage(
        _col(iod / 2 - radius_u) - np.abs(u) + _F(0.5)
    )
    _paint(img, bridge, _col(frame_colour))
    # The temples (arms) run from the outer rims to the ears.
    for k, side in ((0, 1.0), (1, -1.0)):
        u, v = full.frame(eyes[:, k] - lift, axis)
        arm = _coverage(thickness / 2 - np.abs(v + _col(0.3 * radius_v))) * _coverage(_F(side) * u - _col(radius_u))
        _paint(img, arm * _coverage(_col(0.75 * iod) - _F(side) * u), _col(frame_colour))


# ---------------------------------------------------------------- the face


def _lit(normal_x, normal_y, light, ambient, specular):
    """Lambertian shading with ambient light and a specular sheen, for normals
    (-dh/dx, -dh/dy, 1) (unnormalized) and light directions [B, 3] (unit, z
    towards the camera); 1.0 where the surface faces the camera."""
    inverse = _F(1.0) / np.sqrt(normal_x * normal_x + normal_y * normal_y + _F(1.0))
    lx, ly, lz = (_col(light[:, i]) for i in range(3))
    cosine = np.maximum((normal_x * lx + normal_y * ly + lz) * inverse, _F(0.0))
    diffuse = _col(ambient) + _col(1 - ambient) * cosine / lz
    # Blinn's half vector between the light and the camera (0, 0, 1).
    hx, hy, hz = lx, ly, lz + _F(1.0)
    norm = np.sqrt(hx * hx + hy * hy + hz * hz)
    sheen = np.maximum((normal_x * hx + normal_y * hy + hz) * inverse / norm, _F(0.0))
    sheen = np.square(np.square(np.square(sheen)))  # ^8
    return diffuse, _col(specular) * sheen * sheen  # ^16


def render_faces(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws one face around each set of 15 keypoints [B, 15, 2] (pixels,
    Kaggle's point order). Returns uint8 [B, 96, 96]."""
    b = len(keypoints)
    kp = np.asarray(keypoints, np.float64)
    left_eye, right_eye = kp[:, _P["left_eye_center"]], kp[:, _P["right_eye_center"]]
    ux, iod = _unit(left_eye - right_eye)  # image left -> right along the eyes
    uy = _perp(ux)  # down the face
    mid_eyes = (left_eye + right_eye) / 2
    k = _col(iod)

    def place(name: str) -> tuple[np.ndarray, np.ndarray]:
        """A keypoint in the face frame, in units of the eye distance."""
        rel = kp[:, _P[name]] - mid_eyes
        return (rel * ux).sum(1) / iod, (rel * uy).sum(1) / iod

    nose_a, nose_b = place("nose_tip")
    top_a, top_b = place("mouth_center_top_lip")
    bottom_a, bottom_b = place("mouth_center_bottom_lip")
    mouth_a, mouth_b = (top_a + bottom_a) / 2, (top_b + bottom_b) / 2
    corner_spread = np.abs(place("mouth_left_corner")[0] - place("mouth_right_corner")[0]) / 2
    full = _Full()
    face_u, face_v = full.frame(mid_eyes, ux)
    a, v = face_u / k, face_v / k  # the face frame in eye distances: eyes at (+-0.5, 0), v down

    # ---- the head's outline, turned with the face
    yaw = np.clip(nose_a - mouth_a * 0.3, -0.35, 0.35)
    centre_a = -yaw * rng.uniform(0.8, 1.6, b)
    # Head widths in eye distances as on people (cheekbones about 1.1 either
    # side, the jaw's angles 0.85, the chin at or below the crop's bottom edge):
    # the corners beside the jaw show the background, as in the real crops.
    half_w = rng.uniform(1.15, 1.35, b)
    jaw_v = rng.uniform(0.3, 0.6, b)
    chin_v = np.maximum(bottom_b + rng.uniform(0.5, 0.75, b), jaw_v + 0.8)
    top_v = -rng.uniform(2.3, 2.8, b)
    jaw_taper = rng.uniform(0.25, 0.45, b)
    # Half-width of the head at each height: an ellipse above the jaw line, then
    # a jaw narrowing to a rounded chin.
    above = np.clip((v - _col(jaw_v)) / _col(jaw_v - top_v), _F(-1), _F(0))
    t = np.clip((v - _col(jaw_v)) / _col(chin_v - jaw_v), _F(0), _F(1))
    t2 = t * t
    below = (_F(1) - _col(jaw_taper) * t) * np.sqrt(np.maximum(_F(1) - np.square(t2 * t2), _F(0)))
    width_at = _col(half_w) * np.where(v < _col(jaw_v), np.sqrt(_F(1) - above * above), below)
    side_distance = (width_at - np.abs(a - _col(centre_a))) * k  # pixels, positive inside
    head = _coverage(np.minimum(side_distance, (_col(chin_v) - v) * k + _F(0.5)))

    # ---- background: a level, a gradient, blotches, and the edges of a room
    kind = rng.random(b)  # a light wall, a dark one, or anything between
    level = np.where(
        kind < 0.65,
        rng.uniform(0.8, 1.15, b),
        np.where(kind < 0.8, rng.uniform(0.15, 0.35, b), rng.uniform(0.35, 0.8, b)),
    )
    img = _col(level) + _col(rng.uniform(0.0, 0.2, b)) * _smooth_noise(rng, b, 5)
    slope = rng.uniform(-0.3, 0.3, b) / 48
    direction = rng.uniform(0, 2 * np.pi, b)
    img += _col(slope * np.cos(direction)) * (full.X - _F(48)) + _col(slope * np.sin(direction)) * (full.Y - _F(48))
    clutter = rng.random(b) < 0.45
    for _ in range(3):
        angle = rng.uniform(0, np.pi, b)
        offset = rng.uniform(-48, 48, b)
        step = rng.uniform(-0.3, 0.3, b) * clutter
        across = (full.X - _F(48)) * _col(np.cos(angle)) + (full.Y - _F(48)) * _col(np.sin(angle)) - _col(offset)
        img += _col(step) * _coverage(across / _col(rng.uniform(0.5, 2.0, b)))

    # ---- hair behind the head (long hair falls to the shoulders)
    hair_colour = np.where(rng.random(b) < 0.82, rng.uniform(0.1, 0.3, b), rng.uniform(0.3, 0.8, b))
    volume = rng.uniform(0.2, 0.45, b)
    long_hair = rng.random(b) < 0.2
    hair_bottom = np.where(long_hair, rng.uniform(1.2, 3.0, b), rng.uniform(0.0, 0.8, b))
    streaks = _F(0.5) * _smooth_noise(rng, b, 6, 40) + _smooth_noise(rng, b, 16)
    hair_texture = _col(hair_colour) * (_F(1.0) + _col(rng.uniform(0.1, 0.4, b)) * streaks)
    ha = (a - _col(centre_a)) / _col(half_w * (1 + volume))
    hv = (v - _col(jaw_v)) / _col((jaw_v - top_v) * (1 + volume))
    outer = np.where(v < _col(jaw_v), np.sqrt(ha * ha + hv * hv), np.abs(ha))
    ragged = _F(1.0) + _F(0.04) * _smooth_noise(rng, b, 12)
    back_hair = _coverage((ragged - outer) * _col(half_w * iod) * _F(0.6)) * _coverage((_col(hair_bottom) - v) * k)
    bald = rng.random(b) < 0.03
    _paint(img, back_hair * _col(~bald), hair_texture)

    # ---- neck and clothes, then the head
    skin = np.clip(rng.normal(0.53, 0.07, b), 0.3, 0.8)
    neck_w = half_w * rng.uniform(0.5, 0.65, b)
    neck = _coverage((_col(neck_w) - np.abs(a - _col(0.5 * centre_a))) * k) * (v > _col(jaw_v))
    neck_shade = _F(0.55) + _F(0.25) * np.clip((v - _col(chin_v)) / _F(0.5), _F(0), _F(1))
    _paint(img, neck, _col(skin) * neck_shade)
    shoulders_v = chin_v + rng.uniform(0.2, 0.6, b)
    clothes = _coverage((v - _col(shoulders_v) - _F(0.35) * np.maximum(np.abs(a) - _col(neck_w), _F(0))) * k)
    clothes *= _F(1) - neck * (v < _col(shoulders_v + 0.35))
    _paint(img, clothes, _col(rng.uniform(0.02, 0.95, b)) * (_F(1.0) + _F(0.1) * _smooth_noise(rng, b, 6)))
    canvas = _on_canvas(img)
    for side in (-1.0, 1.0):  # ears, level with the eyes and nose, half behind the head
        ear_a = centre_a + side * half_w * 0.97
        centre = mid_eyes + ux * (ear_a * iod)[:, None] + uy * (0.3 * iod)[:, None]
        w = _Window(canvas, centre, 0.4 * iod + 2)
        eu, ev = w.frame(centre, ux)
        eu, ev = eu / _col(0.16 * iod), ev / _col(0.38 * iod)
        ear = _coverage((_F(1.0) - np.sqrt(eu * eu + ev * ev)) * _col(0.16 * iod))
        _paint(w.pixels, ear, _col(skin * 0.8) * (_F(0.9) + _F(0.2) * np.clip(-eu * _F(side), _F(0), _F(1))))
        w.commit()
    img = _off_canvas(canvas)

    # ---- the skin's albedo, then the features painted on it
    albedo = _col(skin) * (
        _F(1.0)
        + _F(0.05) * _smooth_noise(rng, b, 7)
        + _col(rng.uniform(0.02, 0.06, b)) * _smooth_noise(rng, b, 30)
        + _col(rng.uniform(0.04, 0.09, b)) * _smooth_noise(rng, b, 64)
    )
    under_eyes = sum(_blob(a, v, side * 0.5, 0.2, 0.3, 0.14) for side in (-1.0, 1.0))
    albedo *= _F(1.0) - _col(rng.uniform(0.0, 0.1, b)) * under_eyes
    # Shade beside the bridge of the nose (the inner eye corners) and in the
    # folds from the nose's wings to the mouth's corners.
    inner = sum(_blob(a, v, side * 0.27, 0.05, 0.14, 0.16) for side in (-1.0, 1.0))
    albedo *= _F(1.0) - _col(rng.uniform(0.08, 0.25, b)) * inner
    folds = sum(
        _blob(a, v, nose_a + side * (0.22 + corner_spread) / 2, (nose_b + mouth_b) / 2, 0.1, 0.25)
        for side in (-1.0, 1.0)
    )
    albedo *= _F(1.0) - _col(rng.uniform(0.03, 0.15, b)) * folds

    # Facial hair: a beard, a moustache or stubble (albedo towards the hair colour).
    beard_kind = rng.random(b)
    beard_top = nose_b + rng.uniform(0.1, 0.3, b)
    beard_edge = _col(beard_top) - _F(0.5) * np.square((a - _col(centre_a)) / _col(half_w))
    mouth_area = _blob(a, v, mouth_a, mouth_b, corner_spread + 0.08, bottom_b - top_b + 0.1)
    beard_density = np.clip((v - beard_edge) / _F(0.25), _F(0), _F(1)) * (_F(1) - _F(0.8) * mouth_area)
    moustache = _blob(a, v, mouth_a, top_b - 0.07, corner_spread + 0.1, 0.1)
    stubble = _F(0.5) + _F(0.5) * _smooth_noise(rng, b, 48)
    facial = np.where(
        _col(beard_kind < 0.09),
        beard_density * _col(rng.uniform(0.6, 0.95, b)),
        np.where(
            _col(beard_kind < 0.14),
            moustache * _col(rng.uniform(0.5, 0.9, b)),
            np.where(_col(beard_kind < 0.26), beard_density * stubble * _col(rng.uniform(0.1, 0.35, b)), _F(0)),
        ),
    )
    _paint(albedo, facial, hair_texture)

    canvas = _on_canvas(albedo)
    # The light: mostly frontal, a third of faces lit from one side (more often
    # the image's right, as in the real set: a property of the set, not of any
    # one face), from above or level. light_side: where the catchlights sit.
    oblique = rng.random(b) < 0.35
    elevation = np.where(oblique, rng.uniform(0.45, 0.9, b), rng.uniform(1.05, 1.45, b))  # above the image plane
    azimuth = rng.uniform(-0.4 * np.pi, 0.1 * np.pi, b)  # towards the image's right, mostly from above
    azimuth = np.where(rng.random(b) < 0.7, azimuth, np.pi - azimuth)
    light = np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=1
    )
    light_side = -np.sign(light[:, 0] + 1e-9)
    _draw_nose(canvas, rng, kp[:, _P["nose_tip"]], ux, iod, skin)
    brow_colour = np.minimum(hair_colour, skin * 0.4) * rng.uniform(0.4, 0.9, b)
    for side in ("left", "right"):
        _draw_eyebrow(
            canvas,
            rng,
            kp[:, _P[f"{side}_eyebrow_inner_end"]],
            kp[:, _P[f"{side}_eyebrow_outer_end"]],
            iod,
            brow_colour,
        )
        _draw_eye(
            canvas,
            rng,
            kp[:, _P[f"{side}_eye_center"]],
            kp[:, _P[f"{side}_eye_inner_corner"]],
            kp[:, _P[f"{side}_eye_outer_corner"]],
            skin,
            iod,
            light_side,
        )
    _draw_mouth(
        canvas,
        rng,
        kp[:, _P["mouth_left_corner"]],
        kp[:, _P["mouth_right_corner"]],
        kp[:, _P["mouth_center_top_lip"]],
        kp[:, _P["mouth_center_bottom_lip"]],
        skin,
    )
    albedo = _off_canvas(canvas)

    # ---- the surface: skull, brow ridge, eye sockets, nose, cheekbones, lips, chin
    ca = _col(centre_a)
    skull = np.sqrt(
        np.maximum(_F(1) - np.square((a - ca) / _col(half_w * 1.05)) - np.square((v - _F(0.3)) / _F(2.3)), _F(0))
    )
    height = _F(0.8) * skull
    for side in (-1.0, 1.0):
        height -= _F(0.12) * _blob(a, v, side * 0.5, 0.02, 0.36, 0.26)  # eye socket
        height += _F(0.08) * _blob(a, v, side * 0.5, -0.3, 0.42, 0.14)  # brow ridge
        height += _F(0.03) * _blob(a, v, side * 0.75, 0.45, 0.5, 0.4)  # cheekbone
        height += _F(0.09) * _blob(a, v, nose_a + side * 0.17, nose_b - 0.02, 0.12, 0.1)  # nose wing
    # The nose: a ridge from between the eyes down to the tip, rising towards it.
    along = np.clip(v / _col(np.maximum(nose_b, 0.2)), _F(0), _F(1.15))
    ridge_a = _col(nose_a) * along
    ridge_w = _F(0.16) + _F(0.1) * along
    height += _F(0.15) * along * _bump(np.square((a - ridge_a) / ridge_w)) * _coverage((_col(nose_b + 0.04) - v) * k)
    height += _F(0.12) * _blob(a, v, nose_a, nose_b - 0.04, 0.12, 0.1)  # the tip
    height += _F(0.04) * _blob(a, v, mouth_a, mouth_b, corner_spread + 0.1, 0.25)  # lips
    height -= _F(0.04) * _blob(a, v, mouth_a, bottom_b + 0.12, corner_spread * 0.8, 0.08)  # under the lip
    height += _F(0.08) * _blob(a, v, mouth_a, chin_v - 0.28, 0.3, 0.2)  # chin
    height = height * k  # pixels
    gx = np.zeros_like(height)
    gy = np.zeros_like(height)
    gx[:, :, 1:-1] = (height[:, :, 2:] - height[:, :, :-2]) * _F(0.5)
    gy[:, 1:-1, :] = (height[:, 2:, :] - height[:, :-2, :]) * _F(0.5)

    ambient = rng.uniform(0.45, 0.75, b)
    diffuse, sheen = _lit(-gx, -gy, light, ambient, rng.uniform(0.0, 0.25, b))

    hairline_centre = -rng.uniform(1.15, 1.6, b)
    bangs = rng.random(b) < 0.06
    hairline_centre = np.where(bangs, -rng.uniform(0.5, 0.8, b), hairline_centre)
    temple_drop = rng.uniform(1.0, 1.6, b)
    across = np.clip(np.abs(a - ca) / _col(half_w), _F(0), _F(1))
    # An open forehead, and hair down the temples towards the ears.
    hairline = _col(hairline_centre) + _col(temple_drop) * across * across * across
    hairline += _F(0.08) * _smooth_noise(rng, b, 12) * _col(1 + 2 * bangs)
    # A soft edge, two to three pixels wide: hair thins out towards the skin.
    front_hair = head * _coverage((hairline - v) * k * _col(rng.uniform(0.35, 0.6, b))) * _col(~bald)

    # The sides of the face turn away and lie in the shade of hair and ears:
    # darker towards the outline whatever the light.
    sides = _F(1.0) - _col(rng.uniform(0.0, 0.15, b)) * np.square((a - ca) / _col(half_w))
    face = albedo * diffuse * sides + sheen
    _paint(img, head, face)
    hair_light = _F(0.75) + _F(0.25) * diffuse + _F(0.5) * sheen
    _paint(img, front_hair, hair_texture * hair_light)

    glasses = np.flatnonzero(rng.random(b) < 0.14)
    if len(glasses):
        part = img[glasses]
        _draw_glasses(part, rng, kp[glasses], iod[glasses])
        img[glasses] = part

    # ---- the camera: vignetting, exposure, contrast, gamma, blur, noise, JPEG, 8 bits
    radius2 = (np.square(full.X - _F(48)) + np.square(full.Y - _F(48))) / _F(48 * 48)
    img *= _F(1.0) - _col(rng.uniform(0.0, 0.08, b)) * radius2
    img = np.clip(img, _F(0), None) ** _col(rng.uniform(0.8, 1.1, b))
    mean = img.mean(axis=(1, 2), keepdims=True)
    img = (img - mean) * _col(rng.uniform(1.35, 1.55, b)) + mean + _col(rng.uniform(-0.05, 0.05, b))
    # The film's or sensor's toe: shadows flatten out above black instead of clipping.
    black = _col(rng.uniform(0.04, 0.1, b))
    img = np.sqrt(np.maximum(img, _F(0)) ** 2 + black * black)
    img = _gaussian_blur(img, rng.uniform(0.2, 0.65, b))
    signal = np.clip(img, _F(0), _F(1))
    sigma = np.sqrt(_col(rng.uniform(0.0, 0.0002, b)) * signal + _col(rng.uniform(0.0, 0.00005, b)))
    img += rng.standard_normal(img.shape, dtype=np.float32) * sigma
    img = np.clip(img * _F(255.0), _F(0), _F(255))
    compressed = np.flatnonzero(rng.random(b) < 0.6)
    if len(compressed):
        img[compressed] = _jpeg(img[compressed], rng.uniform(50, 95, len(compressed)))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
