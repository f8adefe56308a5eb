"""The GPU kernels of fkd_ops as array-in, array-out functions, without TensorFlow.

`_native.cuda` (builds with GPU kernels) takes raw device pointers and a stream
handle and launches through the same launcher as the TensorFlow op kernels;
`_native.gpu_emulation` takes host pointers and runs the same kernel bodies on
the CPU. :class:`KernelFace` wraps either behind the same functions: CuPy arrays
for CUDA (:class:`CudaFace`), numpy arrays for the emulation
(:class:`EmulationFace`). The GPU tests (python_tests/gpu) and the GPU benchmark
(benchmarks/gpu) drive the kernels through it, on a GPU machine that has no
TensorFlow too (set ``FKD_OPS_NATIVE_DIR`` to the folder holding a ``_native``
built with ``FKD_OPS_TF=OFF``).

Outputs are allocated here; with ``poison=True`` they are first filled with a
poison value, so a test that compares whole arrays also proves every element
was written.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

NORMALIZE_DEFAULTS = {"mode": "scale", "scale": 1.0 / 255.0, "mean": 0.0, "stddev": 1.0}
POISON = {np.dtype(np.uint8): 0xA5, np.dtype(np.float32): -12345.5, np.dtype(np.float64): -12345.5}
BOOL_POISON = 0x5A


def load_native() -> Any:
    """The `_native` module: from ``FKD_OPS_NATIVE_DIR`` when set, else fkd_ops's.

    When ``import fkd_ops`` fails (e.g. the unbuilt source folder shadows the
    installed package because the tests run from the repository root), the
    installed distribution's compiled module is loaded by path.
    """
    folder = os.environ.get("FKD_OPS_NATIVE_DIR")
    if folder:
        if folder not in sys.path:
            sys.path.insert(0, folder)
        return importlib.import_module("_native")
    if "fkd_ops._native" in sys.modules:
        return sys.modules["fkd_ops._native"]
    try:
        return importlib.import_module("fkd_ops._native")
    except ImportError as error:
        path = installed_file("_native")
        if path is None:
            raise
        spec = importlib.util.spec_from_file_location("_native", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}") from error
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


def installed_file(prefix: str) -> Path | None:
    """The installed fkd_ops distribution's package file whose name starts with prefix."""
    try:
        dist = importlib.metadata.distribution("fkd_ops")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.parts[0] == "fkd_ops" and f.name.startswith(prefix):
            return Path(dist.locate_file(f))
    return None


def image_dims(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(batch, height, width, channels) of a rank-3 or rank-4 image shape."""
    if len(shape) == 3:
        return (int(shape[0]), int(shape[1]), int(shape[2]), 1)
    if len(shape) == 4:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    raise ValueError(f"images must have rank 3 or 4, got shape {tuple(shape)}")


def flat_pairs(pairs: Sequence[Sequence[int]]) -> list[int]:
    return [int(k) for pair in pairs for k in pair]


class KernelFace:
    """The pointer API of one backend behind array functions; see the module docstring."""

    name: str
    xp: Any

    def __init__(self, api: Any, *, poison: bool = False) -> None:
        self.api = api
        self.poison = poison

    # -- what a backend provides
    def ptr(self, a: Any) -> int:
        raise NotImplementedError

    def stream(self) -> int:
        raise NotImplementedError

    def to_device(self, a: np.ndarray) -> Any:
        raise NotImplementedError

    def to_host(self, a: Any) -> np.ndarray:
        raise NotImplementedError

    def synchronize(self) -> None:
        pass

    # -- helpers
    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        dtype = np.dtype(dtype)
        out = self.xp.empty(tuple(shape), dtype=dtype)
        if self.poison:
            out.fill(POISON[dtype])
        return out

    def misaligned(self, a: Any) -> Any:
        """A copy of `a` one element past an aligned address (defeats vector access)."""
        buffer = self.xp.empty(a.size + 1, dtype=a.dtype)
        view = buffer[1:].reshape(a.shape)
        view[...] = a
        return view

    def _decisions(self, batch: int) -> Any:
        """Flip decisions as uint8 0/1 (with poison, any other value was never written)."""
        out = self.xp.empty((batch,), dtype=np.uint8)
        if self.poison:
            out.fill(BOOL_POISON)
        return out

    def _contiguous(self, a: Any) -> Any:
        return self.xp.ascontiguousarray(a)

    # -- masked RMSE
    def masked_rmse(self, predictions: Any, targets: Any, squared: bool = False) -> Any:
        """[loss, sum_sq, count] as one array of the inputs' dtype."""
        p, t = self._contiguous(predictions), self._contiguous(targets)
        out = self.empty((3,), p.dtype)
        size = p.dtype.itemsize
        workspace_bytes = self.api.masked_rmse_workspace_bytes(p.size)
        workspace = self.xp.empty(max(workspace_bytes, 1), dtype=np.uint8)
        base = self.ptr(out)
        self.api.masked_rmse(
            p.dtype.name,
            self.ptr(p),
            self.ptr(t),
            p.size,
            base,
            base + size,
            base + 2 * size,
            workspace=self.ptr(workspace),
            workspace_bytes=workspace_bytes,
            squared=squared,
            stream=self.stream(),
        )
        return out

    def masked_rmse_grad(
        self,
        predictions: Any,
        targets: Any,
        scalars: Any,
        squared: bool = False,
        *,
        want_predictions: bool = True,
        want_targets: bool = True,
    ) -> tuple[Any, Any]:
        """Gradients given [sum_sq, count, grad_loss, grad_sum_sq] (an array on the device)."""
        p, t = self._contiguous(predictions), self._contiguous(targets)
        s = self._contiguous(scalars)
        size = s.dtype.itemsize
        gp = self.empty(p.shape, p.dtype)
        gt = self.empty(t.shape, t.dtype)
        base = self.ptr(s)
        self.api.masked_rmse_grad(
            p.dtype.name,
            self.ptr(p),
            self.ptr(t),
            p.size,
            base,
            base + size,
            grad_loss=base + 2 * size,
            grad_sum_sq=base + 3 * size,
            grad_predictions=self.ptr(gp) if want_predictions else 0,
            grad_targets=self.ptr(gt) if want_targets else 0,
            squared=squared,
            stream=self.stream(),
        )
        return gp, gt

    # -- images
    def images(
        self,
        images: Any,
        *,
        out_dtype: Any = None,
        normalize: dict | None = None,
        keypoints: Any = None,
        pairs: Sequence[Sequence[int]] = (),
        x_offset: float = 0.0,
        flip: Any = None,
        seed: tuple[int, int] | None = None,
        probability: float = 0.5,
        force_scalar: bool = False,
    ) -> tuple[Any, Any, Any]:
        """One image launch: (images, keypoints or None, flipped or None).

        normalize=None is a plain flip (same dtype); else a dict of mode, scale,
        mean, stddev (defaults as the ops'). flip: bools per image; seed: draw them.
        """
        x = self._contiguous(images)
        batch, height, width, channels = image_dims(x.shape)
        out_dtype = np.dtype(x.dtype if out_dtype is None else out_dtype)
        out = self.empty(x.shape, out_dtype)
        params = dict(NORMALIZE_DEFAULTS, **(normalize or {}))
        kwargs: dict[str, Any] = {}
        out_keypoints = None
        if keypoints is not None:
            k = self._contiguous(keypoints)
            out_keypoints = self.empty(k.shape, k.dtype)
            kwargs.update(
                keypoint_dtype=k.dtype.name,
                keypoints=self.ptr(k),
                out_keypoints=self.ptr(out_keypoints),
                num_points=k.shape[1] // 2,
                pairs=flat_pairs(pairs),
                x_offset=float(x_offset),
            )
        flipped = None
        if flip is not None:
            f = self._contiguous(flip).astype(np.bool_, copy=False)
            kwargs["flip"] = self.ptr(f)
        if seed is not None:
            flipped = self._decisions(batch)
            kwargs.update(
                seeded=True,
                seed0=int(seed[0]),
                seed1=int(seed[1]),
                probability=float(probability),
                flipped=self.ptr(flipped),
            )
        self.api.images(
            x.dtype.name,
            out_dtype.name,
            self.ptr(x),
            self.ptr(out),
            (batch, height, width, channels),
            normalize=normalize is not None,
            mode=params["mode"],
            scale=float(params["scale"]),
            mean=float(params["mean"]),
            stddev=float(params["stddev"]),
            force_scalar=force_scalar,
            stream=self.stream(),
            **kwargs,
        )
        return out, out_keypoints, flipped

    def normalize_images_grad(
        self,
        grad: Any,
        images: Any,
        *,
        mode: str = "scale",
        scale: float = 1.0 / 255.0,
        mean: float = 0.0,
        stddev: float = 1.0,
        force_scalar: bool = False,
    ) -> Any:
        g, x = self._contiguous(grad), self._contiguous(images)
        out = self.empty(x.shape, x.dtype)
        self.api.normalize_images_grad(
            x.dtype.name,
            g.dtype.name,
            self.ptr(g),
            self.ptr(x),
            self.ptr(out),
            image_dims(x.shape),
            mode=mode,
            scale=float(scale),
            mean=float(mean),
            stddev=float(stddev),
            force_scalar=force_scalar,
            stream=self.stream(),
        )
        return out

    def flip_decisions(self, seed0: int, seed1: int, batch: int, probability: float) -> Any:
        """Decisions as uint8 (0/1; anything else was never written)."""
        out = self._decisions(batch)
        self.api.flip_decisions(seed0, seed1, batch, probability, self.ptr(out), stream=self.stream())
        return out


class EmulationFace(KernelFace):
    """The GPU kernels' bodies on the CPU (`_native.gpu_emulation`), numpy arrays."""

    name = "emulation"
    xp = np

    def __init__(self, native: Any, *, poison: bool = False) -> None:
        super().__init__(native.gpu_emulation, poison=poison)

    def ptr(self, a: Any) -> int:
        return int(a.ctypes.data)

    def stream(self) -> int:
        return 0

    def to_device(self, a: np.ndarray) -> Any:
        return np.array(a, copy=True)

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)


class CudaFace(KernelFace):
    """The CUDA kernels (`_native.cuda`) on CuPy arrays, on CuPy's current stream."""

    name = "cuda"

    def __init__(self, native: Any, *, poison: bool = False) -> None:
        import cupy

        super().__init__(native.cuda, poison=poison)
        self.xp = cupy

    def ptr(self, a: Any) -> int:
        return int(a.data.ptr)

    def stream(self) -> int:
        return int(self.xp.cuda.get_current_stream().ptr)

    def to_device(self, a: np.ndarray) -> Any:
        return self.xp.asarray(a)

    def to_host(self, a: Any) -> np.ndarray:
        return self.xp.asnumpy(a)

    def synchronize(self) -> None:
        self.xp.cuda.get_current_stream().synchronize()


def cuda_unavailable_reason(native: Any) -> str | None:
    """Why the CUDA face cannot run here, or None when it can."""
    if not getattr(native, "built_with_cuda", False):
        return "fkd_ops._native was built without CUDA"
    if native.cuda_device_count() == 0:
        return "no CUDA device (or driver) on this machine"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed"
    return None
