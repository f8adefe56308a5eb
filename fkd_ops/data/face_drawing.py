"""Drawing grayscale faces around 15 keypoints, vectorized over a batch.

Every keypoint sits on the feature it names: the pupil and iris are centred on
the eye centre; each eye's almond (between the lids) ends at its inner and
outer corners; each eyebrow stroke ends at its inner and outer ends; the nose
tip is the highlight between the nostrils; the lips end at the mouth corners,
the upper lip's top edge passes through the top-lip point and the lower lip's
bottom edge through the bottom-lip point.

Speed: the whole-image layers (background, hair, skin) are computed on
[B, 96, 96]; each facial feature only in a per-face window around it, cut from
a padded canvas, sized for the largest such feature in the batch. Every feature
fades to exactly zero within its window (no Gaussian tails), so the pixels do
not depend on the window sizes or on how faces are batched.
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
    return np.clip(d + _F(0.5), _F(0.0), _F(1.0))


def _bump(r2: np.ndarray) -> np.ndarray:
    """A smooth blob of compact support: (1 - r^2)^2 inside r < 1, 0 outside."""
    return np.square(np.clip(_F(1.0) - r2, _F(0.0), None))


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


def _smooth_noise(rng: np.random.Generator, b: int, cells: int) -> np.ndarray:
    """Smooth random fields [B, 96, 96] in about [-1, 1]: a cells x cells grid of
    normals, bilinearly upsampled (elementwise, so the bits do not depend on a
    BLAS library)."""
    grid = rng.standard_normal((b, cells, cells)).astype(np.float32)
    pos = (_CENTRES / IMAGE_SIZE) * (cells - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, cells - 2)
    frac = (pos - lo).astype(np.float32)
    rows = grid[:, lo, :] * (_F(1) - frac)[None, :, None] + grid[:, lo + 1, :] * frac[None, :, None]
    return (rows[:, :, lo] * (_F(1) - frac) + rows[:, :, lo + 1] * frac) * _F(0.6)


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


# ---------------------------------------------------------------- features


def _draw_eye(canvas, rng, centre, corner_a, corner_b, skin, iod, light_side):
    """An almond from corner to corner, with iris and pupil centred on the eye
    centre, a socket shadow, a lid crease, lashes and a catchlight."""
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
    h_up = np.maximum(half * rng.uniform(0.38, 0.62, b), (-ve + 0.3 * half) / bulge_e)
    h_lo = np.maximum(half * rng.uniform(0.22, 0.38, b), (ve + 0.25 * half) / bulge_e)
    socket_depth = rng.uniform(0.05, 0.25, b)
    crease_width = 0.6 + 0.04 * iod
    sclera = rng.uniform(0.55, 0.85, b) * (0.6 + 0.4 * skin)
    iris_r = half * rng.uniform(0.42, 0.58, b)
    iris = rng.uniform(0.08, 0.35, b)
    glint_on = rng.random(b) < 0.75
    lash_width = rng.uniform(0.5, 1.1, b)
    lash = rng.uniform(0.02, 0.2, b)

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
    crease = _coverage(_col(crease_width) - np.abs(v - (v_up - _col(0.35 * half)))) * inside_ends
    _paint(img, crease * _F(0.35), _col(skin) * _F(0.55))

    _paint(img, almond, _col(sclera))
    distance = w.distance(centre)
    _paint(img, _coverage(_col(iris_r) - distance) * almond, _col(iris))
    _paint(img, _coverage(_col(0.45 * iris_r) - distance) * almond, _F(0.03))
    glint = centre + np.stack([-light_side, -np.ones(b)], 1) * (0.3 * iris_r)[:, None]
    _paint(img, _coverage(_col(0.22 * iris_r) - w.distance(glint)) * almond * _col(glint_on), _F(0.92))
    lashes = _coverage(_col(lash_width) - np.abs(v - v_up)) * _coverage(_col(half) * (_F(1.04) - np.abs(u)))
    _paint(img, lashes, _col(lash))
    w.commit()


def _draw_eyebrow(canvas, rng, inner, outer, iod, colour):
    """A tapering, arched stroke whose ends are the two eyebrow keypoints."""
    b = len(inner)
    inner_left = (inner[:, 0] <= outer[:, 0])[:, None]
    left, right = np.where(inner_left, inner, outer), np.where(inner_left, outer, inner)
    axis, length = _unit(right - left)
    length = np.maximum(length, 1.0)
    arch = length * rng.uniform(0.08, 0.22, b)
    thick_inner = iod * rng.uniform(0.06, 0.10, b)
    strength = rng.uniform(0.6, 1.0, b)

    mid = (left + right) / 2
    w = _Window(canvas, mid, np.hypot(length / 2 + 2, arch + thick_inner + 2))
    u, v = w.frame(left, axis)
    t = u / _col(length)  # 0 at the image-left end, 1 at the right
    centre_line = _F(-4.0) * _col(arch) * t * (_F(1.0) - t)
    from_inner = np.where(_col(inner_left[:, 0]), t, _F(1.0) - t)
    thickness = _col(thick_inner) * (_F(1.0) - _F(0.5) * np.clip(from_inner, _F(0), _F(1)))
    stroke = _coverage(thickness / 2 - np.abs(v - centre_line)) * _coverage(u) * _coverage(_col(length) - u)
    _paint(w.pixels, stroke * _col(strength), _col(colour))
    w.commit()


def _draw_nose(canvas, rng, tip, ux, mid_eyes, iod, skin, light_side):
    """Nostrils either side of and just below the tip, a highlight on the tip,
    a shadow under it and one along the side of the bridge."""
    b = len(tip)
    spread = iod * rng.uniform(0.13, 0.18, b)
    under_depth = rng.uniform(0.1, 0.3, b)
    highlight = rng.uniform(0.05, 0.18, b)
    bridge_depth = rng.uniform(0.04, 0.12, b)

    w = _Window(canvas, tip, np.maximum(spread + 0.2 * iod, 0.3 * iod) + 2)
    img = w.pixels
    u, v = w.frame(tip, ux)
    k = _col(iod)
    for side in (-1.0, 1.0):
        du, dv = u - _F(side) * _col(spread), v - _F(0.05) * k
        nostril = _F(1.0) - np.sqrt(np.square(du / (_F(0.075) * k)) + np.square(dv / (_F(0.042) * k)))
        _paint(img, _coverage(nostril * _F(0.06) * k) * _F(0.85), _col(skin) * _F(0.25))
        wu = (np.abs(du) - _F(0.09) * k) / (_F(0.06) * k)
        wv = dv / (_F(0.16) * k)
        img *= _F(1.0) - _F(0.18) * _bump(wu * wu + wv * wv) * (np.sign(du) == side)
    uu, uv = u / (_F(0.2) * k), (v - _F(0.13) * k) / (_F(0.07) * k)
    img *= _F(1.0) - _col(under_depth) * _bump(uu * uu + uv * uv)
    hu, hv = u / (_F(0.13) * k), (v + _F(0.05) * k) / (_F(0.11) * k)
    img += _col(highlight) * _bump(hu * hu + hv * hv)
    w.commit()

    # The shadowed side of the bridge, from between the eyes down to the tip.
    top = mid_eyes + _perp(ux) * (0.1 * iod)[:, None]
    w = _Window(canvas, (top + tip) / 2, np.linalg.norm(tip - top, axis=1) / 2 + 0.3 * iod + 2)
    u, v = w.frame(tip, ux)
    length = _col(np.maximum(((tip - top) * _perp(ux)).sum(1), 1.0))
    bu = (u - _col(-light_side) * _F(0.14) * k) / (_F(0.1) * k)
    along = np.clip(-v / length, _F(0), _F(1))  # 1 at the top, 0 at the tip
    shade = _bump(bu * bu) * _coverage(-v - _F(0.1) * k) * _coverage(length + v) * np.sqrt(along)
    w.pixels *= _F(1.0) - _col(bridge_depth) * shade
    w.commit()


def _draw_mouth(canvas, rng, left_corner, right_corner, top, bottom, skin):
    """Lips from corner to corner: the upper lip's top edge through the top-lip
    keypoint, the lower lip's bottom edge through the bottom-lip keypoint, a dark
    line (or an open mouth, some with teeth) between them."""
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
    lip_shade = rng.uniform(0.55, 0.82, b)
    gap = np.clip(thickness - 0.75 * half, 0.0, None) * 0.45  # lips far apart: an open mouth
    inside = rng.uniform(0.03, 0.2, b)
    teeth_on = (gap > 1.2) & (rng.random(b) < 0.7)
    teeth = rng.uniform(0.6, 0.85, b)

    reach_v = np.maximum(np.abs(top_peak), np.abs(bottom_peak) + 0.4 * half) + 2
    w = _Window(canvas, mid, np.hypot(half + 2, reach_v))
    img = w.pixels
    u, v = w.frame(mid, axis)
    u = u / _col(half)
    bulge = np.maximum(_F(1.0) - u * u, _F(0.0))
    top_edge, bottom_edge = _col(top_peak) * bulge, _col(bottom_peak) * bulge
    parting = _col(parting_peak) * bulge
    ends = _coverage(_col(half) * (_F(1.0) - np.abs(u)))
    lips = _coverage(v - top_edge) * _coverage(bottom_edge - v) * ends
    _paint(img, lips, _col(skin * lip_shade))
    opening = _coverage(np.maximum(_col(gap) * bulge, _F(0.45)) - np.abs(v - parting)) * ends
    _paint(img, opening, _col(inside))
    _paint(img, opening * (v < parting) * _col(teeth_on) * (bulge > 0.25), _col(teeth))
    su, sv = u / _F(0.75), (v - bottom_edge - _col(0.2 * half)) / _col(0.15 * half)
    img *= _F(1.0) - _F(0.12) * _bump(su * su + sv * sv)  # shadow under the lower lip
    w.commit()


def _draw_ears(canvas, mid_eyes, ux, uy, half_w, eyes_to_mouth, iod, skin):
    """An ellipse either side of the head, level with the eyes and nose (drawn
    before the face, which covers their inner half)."""
    for side in (-1.0, 1.0):
        centre = mid_eyes + ux * (side * half_w * 0.97)[:, None] + uy * (0.3 * eyes_to_mouth)[:, None]
        w = _Window(canvas, centre, 0.38 * iod + 2)
        eu, ev = w.frame(centre, ux)
        eu, ev = eu / _col(0.16 * iod), ev / _col(0.38 * iod)
        _paint(w.pixels, _coverage((_F(1.0) - np.sqrt(eu * eu + ev * ev)) * _col(0.16 * iod)), _col(skin * 0.85))
        w.commit()


def _draw_glasses(img, rng, keypoints, iod):
    """Round frames around both eye centres and a bridge (img: whole images)."""
    b = len(img)
    frame_colour = np.where(rng.random(b) < 0.75, rng.uniform(0.02, 0.25, b), rng.uniform(0.7, 0.95, b))
    thickness = _col(rng.uniform(0.6, 1.4, b))
    radius_u = iod * rng.uniform(0.36, 0.46, b)
    radius_v = radius_u * rng.uniform(0.65, 0.85, b)
    glare = rng.uniform(0.0, 0.08, (2, b))
    eyes = keypoints[:, [_P["left_eye_center"], _P["right_eye_center"]]]
    axis, _ = _unit(eyes[:, 0] - eyes[:, 1])
    full = _Full()
    for k in range(2):
        u, v = full.frame(eyes[:, k], axis)
        r = np.sqrt(np.square(u / _col(radius_u)) + np.square(v / _col(radius_v)))
        _paint(img, _coverage(thickness / 2 - np.abs(r - _F(1.0)) * _col(radius_v)), _col(frame_colour))
        img += (r < 1) * _col(glare[k])
    u, v = full.frame((eyes[:, 0] + eyes[:, 1]) / 2, axis)
    bridge = _coverage(thickness / 2 - np.abs(v + _col(0.15 * radius_v))) * _coverage(
        _col(iod / 2 - radius_u) - np.abs(u) + _F(0.5)
    )
    _paint(img, bridge, _col(frame_colour))


# ---------------------------------------------------------------- the face


def render_faces(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws one face around each set of 15 keypoints [B, 15, 2] (pixels,
    Kaggle's point order). Returns uint8 [B, 96, 96]."""
    b = len(keypoints)
    kp = np.asarray(keypoints, np.float64)
    left_eye, right_eye = kp[:, _P["left_eye_center"]], kp[:, _P["right_eye_center"]]
    ux, iod = _unit(left_eye - right_eye)  # image left -> right along the eyes
    uy = _perp(ux)  # down the face
    mid_eyes = (left_eye + right_eye) / 2
    mouth = (kp[:, _P["mouth_center_top_lip"]] + kp[:, _P["mouth_center_bottom_lip"]]) / 2
    eyes_to_mouth = np.maximum(((mouth - mid_eyes) * uy).sum(1), 0.5 * iod)
    light_angle = rng.uniform(0, 2 * np.pi, b)
    light_side = np.sign(np.cos(light_angle) + 1e-9)  # the side of the face the light comes from
    full = _Full()

    # Background: a level, a gradient and smooth blotches.
    img = _col(rng.uniform(0.05, 0.95, b)) + _col(rng.uniform(0.0, 0.15, b)) * _smooth_noise(rng, b, 5)
    slope = rng.uniform(-0.2, 0.2, b) / 48
    direction = rng.uniform(0, 2 * np.pi, b)
    img += _col(slope * np.cos(direction)) * (full.X - _F(48)) + _col(slope * np.sin(direction)) * (full.Y - _F(48))

    skin = rng.uniform(0.35, 0.8, b)
    face_u, face_v = full.frame(mid_eyes, ux)  # face frame: origin between the eyes, v down
    half_w = iod * rng.uniform(1.15, 1.38, b)
    centre_v = eyes_to_mouth * rng.uniform(0.3, 0.45, b)
    half_h = eyes_to_mouth * rng.uniform(1.3, 1.55, b)
    fv = (face_v - _col(centre_v)) / _col(half_h)
    narrowing = _F(1.0) - _F(0.28) * np.square(np.clip(fv, _F(0), None))  # the jaw narrows to the chin
    fu = face_u / (_col(half_w) * narrowing)
    radius = np.sqrt(fu * fu + fv * fv)
    face = _coverage((_F(1.0) - radius) * _col(half_w * 0.8))

    # Hair behind and above the face, from short to long.
    hair_colour = np.where(rng.random(b) < 0.85, rng.uniform(0.02, 0.35, b), rng.uniform(0.35, 0.7, b))
    hair_r = np.sqrt(np.square(face_u / _col(half_w * 1.1)) + np.square((fv + _F(0.1)) / _F(1.05)))
    hair_bottom = eyes_to_mouth * rng.uniform(-0.2, 1.8, b)
    hair = _coverage((_F(1.0) - hair_r) * _col(half_w)) * _coverage(_col(hair_bottom) - face_v)
    _paint(img, hair, _col(hair_colour) * (_F(1.0) + _F(0.25) * _smooth_noise(rng, b, 12)))

    # Neck and ears, then the face over them.
    neck = _coverage(_col(half_w * 0.55) - np.abs(face_u)) * (face_v > 0)
    _paint(img, neck, _col(skin * 0.72))
    canvas = np.zeros((b, _CANVAS, _CANVAS), np.float32)
    canvas[:, _PAD:-_PAD, _PAD:-_PAD] = img
    _draw_ears(canvas, mid_eyes, ux, uy, half_w, eyes_to_mouth, iod, skin)
    img = np.ascontiguousarray(canvas[:, _PAD:-_PAD, _PAD:-_PAD])
    hairline = _col(-eyes_to_mouth * rng.uniform(0.6, 1.2, b)) + _col(0.5 * eyes_to_mouth) * np.square(
        face_u / _col(half_w)
    )
    skin_cover = face * _coverage(face_v - hairline)
    light = _F(1.0) + _col(rng.uniform(0.0, 0.35, b)) * (
        fu * _col(np.cos(light_angle)) + fv * _col(np.sin(light_angle))
    )
    shading = (_F(1.0) - _F(0.35) * np.square(np.square(np.clip(radius, _F(0), _F(1))))) * light
    _paint(img, skin_cover, _col(skin) * shading * (_F(1.0) + _F(0.04) * _smooth_noise(rng, b, 8)))

    beard = np.flatnonzero(rng.random(b) < 0.08)
    if len(beard):
        # Higher at the sides (sideburns), denser on the chin than on the cheeks.
        nose_v = ((kp[beard, _P["nose_tip"]] - mid_eyes[beard]) * uy[beard]).sum(1)
        fu_b, fv_b = face_u[beard], face_v[beard]
        top = _col(nose_v + 0.15 * iod[beard]) - _col(0.8 * eyes_to_mouth[beard]) * np.square(
            fu_b / _col(half_w[beard])
        )
        density = np.clip((fv_b - top) / _col(0.4 * iod[beard]), _F(0), _F(1)) * (
            _F(0.5) + _F(0.5) * _coverage(fv_b - _col(eyes_to_mouth[beard]))
        )
        cover = face[beard] * density * _col(rng.uniform(0.5, 0.85, len(beard)))
        part = img[beard]
        _paint(part, cover, _col(hair_colour[beard]) * (_F(1.0) + _F(0.35) * _smooth_noise(rng, len(beard), 24)))
        img[beard] = part

    # The features, each in its own window of a padded canvas.
    canvas = np.zeros((b, _CANVAS, _CANVAS), np.float32)
    canvas[:, _PAD:-_PAD, _PAD:-_PAD] = img
    _draw_nose(canvas, rng, kp[:, _P["nose_tip"]], ux, mid_eyes, iod, skin, light_side)
    brow_colour = np.minimum(hair_colour, skin * 0.5) * rng.uniform(0.6, 1.0, b)
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
    img = np.ascontiguousarray(canvas[:, _PAD:-_PAD, _PAD:-_PAD])

    glasses = np.flatnonzero(rng.random(b) < 0.12)
    if len(glasses):
        part = img[glasses]
        _draw_glasses(part, rng, kp[glasses], iod[glasses])
        img[glasses] = part

    # The camera: exposure, contrast, blur, noise, 8 bits.
    mean = img.mean(axis=(1, 2), keepdims=True)
    img = (img - mean) * _col(rng.uniform(0.6, 1.3, b)) + mean + _col(rng.uniform(-0.12, 0.12, b))
    img = _gaussian_blur(img, rng.uniform(0.0, 1.3, b))
    img += rng.standard_normal(img.shape, dtype=np.float32) * _col(rng.uniform(0.004, 0.035, b))
    return np.clip(np.rint(img * _F(255.0)), 0, 255).astype(np.uint8)
