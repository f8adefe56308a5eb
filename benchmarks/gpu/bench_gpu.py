"""Times every fkd_ops GPU kernel beside a device copy and CuPy compositions of the same math.

    python benchmarks/gpu/bench_gpu.py --out DIR [--batches 128,512,...] [--repeats 30]

For each batch size B (96 x 96 uint8 faces, 30 keypoint columns) it times, in
the same run and on the same stream, with CUDA events around each repetition
(median of many, after warm-up):
  - a device-to-device copy moving as many bytes as the flip + normalize does
    (the bandwidth ceiling), and
  - each kernel of `_native.cuda` (called through its pointer API on
    preallocated outputs, through the launcher the TensorFlow op kernels use:
    the NVRTC-built image loaded with the driver API) beside the CuPy code a
    user would write for the same math, whose result it also compares.
It prints a table, checks the targets of issue 10 and writes gpu_bench.json and
gpu_bench.txt to DIR. No TensorFlow is needed: set FKD_OPS_NATIVE_DIR to the
folder of a `_native` built with FKD_OPS_TF=OFF FKD_OPS_CUDA=ON.

`--backend emulation` runs the same script on the CPU (numpy, the emulated
kernels, wall-clock timing) to check the script itself where there is no GPU;
its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fkd_ops.keypoints import FLIP_PAIRS
from fkd_ops.ops.gpu_arrays import CudaFace, EmulationFace, load_native

SIDE = 96
PIXELS = SIDE * SIDE
COLS = 30
SCALE = np.float32(1.0 / 255.0)
DEFAULT_BATCHES = (128, 512, 2048, 4096, 8192, 32768, 65536)
TARGET_COPY_FRACTION = 0.85  # flip + normalize at B=8192, of the copy's bandwidth (issue 10)
TARGET_RMSE_SPEEDUP = 15.0  # masked RMSE forward + backward at B=4096, over CuPy (issue 10)


def source_columns() -> np.ndarray:
    """src[c]: the keypoint column that lands in column c of a flipped row."""
    partner = list(range(COLS // 2))
    for left, right in FLIP_PAIRS:
        partner[left], partner[right] = right, left
    src = np.empty(COLS, dtype=np.int64)
    for k in range(COLS // 2):
        p = partner[k]
        src[2 * p], src[2 * p + 1] = 2 * k, 2 * k + 1
    return src


FLAT_PAIRS = [k for pair in FLIP_PAIRS for k in pair]


class Timer:
    """Median time in microseconds of fn() over repetitions, after warm-up."""

    def __init__(self, face: Any, repeats: int, budget_s: float) -> None:
        self.face, self.repeats, self.budget_s = face, repeats, budget_s
        self.cuda = face.name == "cuda"

    def _once(self, fn: Callable[[], Any]) -> float:
        if not self.cuda:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e6
        cp = self.face.xp
        stream = cp.cuda.get_current_stream()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end) * 1e3

    def __call__(self, fn: Callable[[], Any]) -> dict:
        for _ in range(3):
            fn()
        self.face.synchronize()
        first = self._once(fn)
        count = int(min(self.repeats, max(5, self.budget_s * 1e6 / max(first, 1.0))))
        samples = [self._once(fn) for _ in range(count)]
        return {"median_us": float(np.median(samples)), "min_us": float(np.min(samples)), "repeats": count}


def max_diff(face: Any, a: Any, b: Any) -> float:
    """Largest |a - b| / max(1, |b|), on the device: absolute for values up to 1,
    relative above (a float32 sum of a million squares differs from a double one
    in its 7th digit, which is no error). NaN where both are NaN counts 0,
    elsewhere inf."""
    xp = face.xp
    a, b = xp.asarray(a), xp.asarray(b)
    wide = np.float64 if np.float64 in (a.dtype, b.dtype) else np.float32
    x, y = a.astype(wide), b.astype(wide)
    if x.size == 0:
        return 0.0
    d = xp.where(xp.isnan(x) & xp.isnan(y), 0.0, xp.abs(x - y) / xp.maximum(xp.abs(y), 1.0))
    return float(xp.where(xp.isnan(d), np.inf, d).max())


class Bench:
    def __init__(self, face: Any, max_batch: int, seed: int) -> None:
        self.face, self.xp, self.api = face, face.xp, face.api
        xp = self.xp
        rng = np.random.default_rng(seed)
        if face.name == "cuda":
            xp.random.seed(seed)
            self.images_all = (xp.random.random_sample((max_batch, SIDE, SIDE), dtype=np.float32) * 256).astype(
                np.uint8
            )
            self.grad_all = xp.random.standard_normal((max_batch, SIDE, SIDE), dtype=np.float32)
        else:
            self.images_all = rng.integers(0, 256, (max_batch, SIDE, SIDE), dtype=np.uint8)
            self.grad_all = rng.standard_normal((max_batch, SIDE, SIDE), dtype=np.float32)
        rows = max(max_batch, 4096)
        targets = rng.uniform(0, SIDE, (rows, COLS)).astype(np.float32)
        targets[np.repeat(rng.random((rows, COLS // 2)) < 0.7, 2, axis=1)] = np.nan
        predictions = np.where(np.isnan(targets), 48.0, targets + rng.normal(0, 3, targets.shape)).astype(np.float32)
        self.targets_all = face.to_device(targets)
        self.predictions_all = face.to_device(predictions)
        self.flip_all = face.to_device(rng.random(max_batch) < 0.5)
        self.src_cols = face.to_device(source_columns())
        self.ptr = face.ptr
        self.stream = face.stream()

    # -- the items: each returns (ours, cupy, bytes, compare)
    def items(self, b: int) -> dict[str, tuple]:
        xp, api, ptr, stream = self.xp, self.api, self.ptr, self.stream
        images = self.images_all[:b]
        images_f = images.astype(np.float32)
        grad = self.grad_all[:b]
        flip = self.flip_all[:b]
        kp = self.targets_all[:b]
        shape = (b, SIDE, SIDE, 1)
        src_cols = self.src_cols
        out_f = xp.empty((b, SIDE, SIDE), dtype=np.float32)
        out_u8 = xp.empty((b, SIDE, SIDE), dtype=np.uint8)
        out_kp = xp.empty((b, COLS), dtype=np.float32)
        out_dx = xp.empty((b, SIDE, SIDE), dtype=np.float32)
        kp_args = dict(
            keypoint_dtype="float32",
            keypoints=ptr(kp),
            out_keypoints=ptr(out_kp),
            num_points=COLS // 2,
            pairs=FLAT_PAIRS,
            flip=ptr(flip),
            stream=stream,
        )
        flip3 = flip[:, None, None]
        flip2 = flip[:, None]

        def remap_cupy(k, offset, sign):
            moved = k[:, src_cols]
            moved[:, 0::2] = offset + sign * moved[:, 0::2]
            return xp.where(flip2, moved, k)

        # flip + normalize (uint8 -> float32 scale, keypoints): the input pipeline's path
        def ours_flip_normalize():
            api.images(
                "uint8",
                "float32",
                ptr(images),
                ptr(out_f),
                shape,
                normalize=True,
                mode="scale",
                scale=float(SCALE),
                x_offset=float(SIDE),
                **kp_args,
            )

        def cupy_flip_normalize():
            mirrored = xp.where(flip3, images[:, :, ::-1], images)
            return xp.multiply(mirrored, SCALE, dtype=np.float32), remap_cupy(kp, float(SIDE), -1.0)

        def ours_flip():
            api.images("uint8", "uint8", ptr(images), ptr(out_u8), shape, x_offset=float(SIDE), **kp_args)

        def cupy_flip():
            return xp.where(flip3, images[:, :, ::-1], images), remap_cupy(kp, float(SIDE), -1.0)

        def ours_flip_grad():
            api.images("float32", "float32", ptr(grad), ptr(out_dx), shape, x_offset=0.0, **kp_args)

        def cupy_flip_grad():
            return xp.where(flip3, grad[:, :, ::-1], grad), remap_cupy(kp, 0.0, -1.0)

        def ours_scale():
            api.images(
                "uint8",
                "float32",
                ptr(images),
                ptr(out_f),
                shape,
                normalize=True,
                mode="scale",
                scale=float(SCALE),
                stream=stream,
            )

        def cupy_scale():
            return xp.multiply(images, SCALE, dtype=np.float32)

        def ours_standardize():
            api.images(
                "uint8", "float32", ptr(images), ptr(out_f), shape, normalize=True, mode="standardize", stream=stream
            )

        def cupy_standardize():
            x = images.astype(np.float32)
            mean = x.mean(axis=(1, 2), keepdims=True)
            std = x.std(axis=(1, 2), keepdims=True)
            return (x - mean) / xp.maximum(std, np.float32(1.0 / SIDE))

        def ours_scale_grad():
            api.normalize_images_grad(
                "float32",
                "float32",
                ptr(grad),
                ptr(images_f),
                ptr(out_dx),
                shape,
                mode="scale",
                scale=float(SCALE),
                stream=stream,
            )

        def cupy_scale_grad():
            return grad * SCALE

        def ours_standardize_grad():
            api.normalize_images_grad(
                "float32", "float32", ptr(grad), ptr(images_f), ptr(out_dx), shape, mode="standardize", stream=stream
            )

        def cupy_standardize_grad():
            x = images_f
            mean = x.mean(axis=(1, 2), keepdims=True)
            std = x.std(axis=(1, 2), keepdims=True)
            floor = np.float32(1.0 / SIDE)
            active = std >= floor
            factor = 1 / xp.maximum(std, floor)
            y = (x - mean) * factor
            mean_g = grad.mean(axis=(1, 2), keepdims=True)
            mean_gy = xp.where(active, (grad * y).mean(axis=(1, 2), keepdims=True), 0)
            return factor * (grad - mean_g - y * mean_gy)

        rows = b
        p, t = self.predictions_all[:rows], self.targets_all[:rows]
        n = p.size
        totals = xp.empty(3, dtype=np.float32)
        upstream = self.face.to_device(np.array([1.0, 0.0], dtype=np.float32))
        ws_bytes = api.masked_rmse_workspace_bytes(n)
        ws = xp.empty(max(ws_bytes, 1), dtype=np.uint8)
        gp, gt = xp.empty_like(p), xp.empty_like(t)
        tp = ptr(totals)

        def ours_rmse():
            api.masked_rmse(
                "float32",
                ptr(p),
                ptr(t),
                n,
                tp,
                tp + 4,
                tp + 8,
                workspace=ptr(ws),
                workspace_bytes=ws_bytes,
                stream=stream,
            )

        def ours_rmse_fwd_bwd():
            ours_rmse()
            api.masked_rmse_grad(
                "float32",
                ptr(p),
                ptr(t),
                n,
                tp + 4,
                tp + 8,
                grad_loss=ptr(upstream),
                grad_sum_sq=ptr(upstream) + 4,
                grad_predictions=ptr(gp),
                grad_targets=ptr(gt),
                stream=stream,
            )

        def cupy_rmse_parts():
            present = ~xp.isnan(t)
            d = xp.where(present, p - t, np.float32(0))
            sum_sq = (d * d).sum()
            count = present.sum(dtype=np.float32)
            mse = sum_sq / xp.maximum(count, np.float32(1))
            loss = xp.where(mse > 0, xp.sqrt(mse), np.float32(0))
            return loss, sum_sq, count, present, d

        def cupy_rmse():
            loss, sum_sq, count, _, _ = cupy_rmse_parts()
            return xp.stack([loss, sum_sq, count])

        def cupy_rmse_fwd_bwd():
            loss, sum_sq, count, present, d = cupy_rmse_parts()
            coefficient = xp.where(sum_sq > 0, np.float32(1.0) / xp.sqrt(sum_sq * count), np.float32(0))
            g = xp.where(present, coefficient * d, np.float32(0))
            return g, -g

        key_seed = (12345, 678)
        decisions = xp.empty(b, dtype=np.bool_)

        def ours_decisions():
            api.flip_decisions(key_seed[0], key_seed[1], b, 0.5, ptr(decisions), stream=stream)

        golden = np.uint64(0x9E3779B97F4A7C15)

        def mix(z):
            z = z ^ (z >> np.uint64(30))
            z = z * np.uint64(0xBF58476D1CE4E5B9)
            z = z ^ (z >> np.uint64(27))
            z = z * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))

        def scalar_mix(z: int) -> int:
            m = (1 << 64) - 1
            z ^= z >> 30
            z = (z * 0xBF58476D1CE4E5B9) & m
            z ^= z >> 27
            z = (z * 0x94D049BB133111EB) & m
            return z ^ (z >> 31)

        s0, s1 = (v & ((1 << 64) - 1) for v in key_seed)
        key = np.uint64(scalar_mix(s0 ^ scalar_mix((s1 + 0x9E3779B97F4A7C15) & ((1 << 64) - 1))))

        def cupy_decisions():
            i = xp.arange(1, b + 1, dtype=np.uint64)
            bits = mix(key + i * golden)
            return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53 < 0.5

        image_bytes = b * PIXELS
        kp_bytes = 2 * b * COLS * 4 + b
        return {
            "flip_normalize": (
                ours_flip_normalize,
                cupy_flip_normalize,
                image_bytes * 5 + kp_bytes,
                lambda r: max(max_diff(self.face, out_f, r[0]), max_diff(self.face, out_kp, r[1])),
            ),
            "normalize_scale": (ours_scale, cupy_scale, image_bytes * 5, lambda r: max_diff(self.face, out_f, r)),
            "normalize_standardize": (
                ours_standardize,
                cupy_standardize,
                image_bytes * 5,
                lambda r: max_diff(self.face, out_f, r),
            ),
            "flip": (
                ours_flip,
                cupy_flip,
                image_bytes * 2 + kp_bytes,
                lambda r: max(max_diff(self.face, out_u8, r[0]), max_diff(self.face, out_kp, r[1])),
            ),
            "flip_grad": (
                ours_flip_grad,
                cupy_flip_grad,
                image_bytes * 8 + kp_bytes,
                lambda r: max(max_diff(self.face, out_dx, r[0]), max_diff(self.face, out_kp, r[1])),
            ),
            "normalize_scale_grad": (
                ours_scale_grad,
                cupy_scale_grad,
                image_bytes * 8,
                lambda r: max_diff(self.face, out_dx, r),
            ),
            "normalize_standardize_grad": (
                ours_standardize_grad,
                cupy_standardize_grad,
                image_bytes * 12,
                lambda r: max_diff(self.face, out_dx, r),
            ),
            "masked_rmse_fwd": (ours_rmse, cupy_rmse, n * 8, lambda r: max_diff(self.face, totals, r)),
            "masked_rmse_fwd_bwd": (
                ours_rmse_fwd_bwd,
                cupy_rmse_fwd_bwd,
                n * 24,
                lambda r: max(max_diff(self.face, gp, r[0]), max_diff(self.face, gt, r[1])),
            ),
            "flip_decisions": (ours_decisions, cupy_decisions, b, lambda r: max_diff(self.face, decisions, r)),
        }

    def copy(self, nbytes: int) -> Callable[[], Any]:
        xp = self.xp
        src = xp.empty(nbytes, dtype=np.uint8)
        src.fill(7)
        dst = xp.empty_like(src)
        if self.face.name == "cuda":
            runtime = xp.cuda.runtime
            stream = self.stream

            def run():
                runtime.memcpyAsync(dst.data.ptr, src.data.ptr, nbytes, runtime.memcpyDeviceToDevice, stream)
        else:

            def run():
                np.copyto(dst, src)

        return run


def device_info(face: Any, native: Any) -> dict:
    info = {
        "backend": face.name,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "nvrtc": native.gpu_nvrtc_version(),
        "images": [f"{i['target']} {i['kind']}" for i in native.gpu_kernel_images()],
    }
    probe = native.gpu_probe()
    info["image_used"] = [d["image"] for d in probe["devices"]]
    if face.name == "cuda":
        cp = face.xp
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        info.update(
            device=name.decode() if isinstance(name, bytes) else str(name),
            cupy=cp.__version__,
            driver=cp.cuda.runtime.driverGetVersion(),
            runtime=cp.cuda.runtime.runtimeGetVersion(),
            multiprocessors=props["multiProcessorCount"],
        )
    else:
        info["device"] = "CPU emulation (numbers mean nothing)"
    return info


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_bench.json and gpu_bench.txt")
    parser.add_argument("--batches", default=",".join(map(str, DEFAULT_BATCHES)))
    parser.add_argument("--repeats", type=int, default=40, help="most timed repetitions per measurement")
    parser.add_argument("--budget", type=float, default=0.15, help="seconds of repetitions per measurement")
    parser.add_argument("--backend", choices=("cuda", "emulation"), default="cuda")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    native = load_native()
    face = CudaFace(native) if args.backend == "cuda" else EmulationFace(native)
    info = device_info(face, native)
    print(
        f"# {info['device']} ({info['backend']}); kernels by NVRTC {info['nvrtc']}: {', '.join(info['images'])}; "
        f"this GPU runs {info['image_used']}",
        flush=True,
    )
    bench = Bench(face, max(batches), args.seed)
    timer = Timer(face, args.repeats, args.budget)
    rows: list[dict] = []
    for b in batches:
        copy_bytes = b * PIXELS * 5 // 2  # read + write = the flip + normalize's traffic
        copy_t = timer(bench.copy(copy_bytes))
        copy_gbps = 2 * copy_bytes / copy_t["median_us"] / 1e3
        rows.append(
            {
                "item": "device_copy",
                "batch": b,
                "ours_us": copy_t["median_us"],
                "cupy_us": None,
                "bytes": 2 * copy_bytes,
                "gbps": copy_gbps,
                "copy_fraction": 1.0,
                "max_diff": 0.0,
            }
        )
        for item, (ours, cupy, nbytes, compare) in bench.items(b).items():
            t_ours = timer(ours)
            t_cupy = timer(cupy)
            diff = compare(cupy())
            gbps = nbytes / t_ours["median_us"] / 1e3
            rows.append(
                {
                    "item": item,
                    "batch": b,
                    "ours_us": t_ours["median_us"],
                    "cupy_us": t_cupy["median_us"],
                    "speedup": t_cupy["median_us"] / t_ours["median_us"],
                    "bytes": nbytes,
                    "gbps": gbps,
                    "copy_fraction": gbps / copy_gbps,
                    "max_diff": diff,
                    "ours_min_us": t_ours["min_us"],
                    "cupy_min_us": t_cupy["min_us"],
                    "repeats": [t_ours["repeats"], t_cupy["repeats"]],
                }
            )
            r = rows[-1]
            print(
                f"{item:28s} B={b:6d} ours {r['ours_us']:10.1f} us  cupy {r['cupy_us']:10.1f} us  "
                f"x{r['speedup']:6.2f}  {gbps:8.1f} GB/s ({100 * r['copy_fraction']:5.1f}% of copy)  "
                f"max rel diff {diff:.2e}",
                flush=True,
            )
        if face.name == "cuda":
            face.xp.get_default_memory_pool().free_all_blocks()

    targets = check_targets(rows)
    table = format_table(info, rows, targets)
    print(table)
    write_atomically(args.out / "gpu_bench.txt", table + "\n")
    write_atomically(
        args.out / "gpu_bench.json", json.dumps({"info": info, "rows": rows, "targets": targets}, indent=1) + "\n"
    )
    return 0


def check_targets(rows: list[dict]) -> dict:
    def find(item, b):
        return next((r for r in rows if r["item"] == item and r["batch"] == b), None)

    out: dict[str, Any] = {}
    r = find("flip_normalize", 8192)
    out["flip_normalize_8192_copy_fraction"] = (
        None
        if r is None
        else {
            "value": r["copy_fraction"],
            "target": TARGET_COPY_FRACTION,
            "met": r["copy_fraction"] >= TARGET_COPY_FRACTION,
        }
    )
    r = find("masked_rmse_fwd_bwd", 4096)
    out["masked_rmse_fwd_bwd_4096_speedup"] = (
        None
        if r is None
        else {"value": r["speedup"], "target": TARGET_RMSE_SPEEDUP, "met": r["speedup"] >= TARGET_RMSE_SPEEDUP}
    )
    slower = [
        f"{r['item']}@{r['batch']} x{r['speedup']:.2f}"
        for r in rows
        if r.get("speedup") is not None and r["speedup"] < 1.0
    ]
    out["no_kernel_slower_than_cupy"] = {"met": not slower, "slower": slower}
    return out


def format_table(info: dict, rows: list[dict], targets: dict) -> str:
    lines = [
        f"fkd_ops GPU kernels on {info['device']} ({info['backend']}); median of CUDA-event-timed repetitions",
        f"kernels by NVRTC {info.get('nvrtc')}: {', '.join(info.get('images', []))}; "
        f"this GPU runs {info.get('image_used')}",
        f"{'kernel':28s} {'B':>6s} {'ours us':>10s} {'cupy us':>10s} {'speedup':>8s} {'GB/s':>8s} {'%copy':>6s} "
        f"{'rel.diff':>9s}",
    ]
    for r in rows:
        cupy = "" if r["cupy_us"] is None else f"{r['cupy_us']:10.1f}"
        speed = "" if r.get("speedup") is None else f"{r['speedup']:8.2f}"
        lines.append(
            f"{r['item']:28s} {r['batch']:6d} {r['ours_us']:10.1f} {cupy:>10s} {speed:>8s} "
            f"{r['gbps']:8.1f} {100 * r['copy_fraction']:6.1f} {r['max_diff']:9.1e}"
        )
    lines.append("targets:")
    for name, t in targets.items():
        lines.append(f"  {name}: {json.dumps(t)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
