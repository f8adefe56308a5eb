"""How close are the synthetic faces to real ones? Label-free image statistics of
the built-in generator's faces against the 20 real unlabeled faces, and a contact
sheet of both.

The real faces (``shared/data/real_faces_unlabeled/*.png``, found in a parent
folder of this repository, or ``--real``) are only looked at and measured as a
set: nothing is fitted to any one of them and none is labelled. Statistics, each
printed for the real set, the synthetic set and as a gap between them:

- intensity: per-image mean and contrast (std), the pooled grey-level
  distribution and that of per-image standardized pixels (its shape: skew,
  clipping, bimodality), gaps as Wasserstein-1 distances;
- gradients: the pooled distribution of gradient magnitudes |grad I| (edges,
  texture, noise), and of gradients over each image's std;
- frequency content: the radially averaged power spectrum (Hann window, each
  image's power normalized to 1), its log-log slope, and the gap in dB RMS over
  radii 2..47 cycles per image;
- the mean face and the per-pixel spread (correlation and RMS gap), and the main
  variations: how much of the real faces' variance the synthetic set's top 10
  principal components explain, beside how much of its own;
- how easily real and synthetic faces are told apart from these features: the
  cross-validated AUC of a shrunk linear discriminant (0.5: not at all; 1.0:
  always).

With only 20 real faces every gap has a floor: it is printed beside each gap as
the same gap between 20 synthetic faces and the other synthetic ones.

With ``--runs RUN...`` it also predicts keypoints on the real faces with each
trained run and prints two label-free signs of transfer: flip inconsistency (RMSE
between the predictions on a face and the mirrored predictions on its mirror
image; 0 for a network that ignores the image, so read it with the next) and the
spread of the predicted shapes (RMS distance from their mean shape), beside the
same numbers on synthetic validation-like faces.

Usage:
  python benchmarks/realism.py [--n 600] [--seed 0] [--real DIR] [--out benchmarks/results/realism-vN]
                               [--time-generation] [--runs RUN ...]
Writes <out>.txt (the table), <out>.json, <out>-sheet.png (contact sheet: real
faces beside synthetic ones) and <out>-stats.png (histograms, spectra, mean faces).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from fkd_ops.data.images import load_faces  # noqa: E402
from fkd_ops.data.synthetic import GENERATOR_VERSION, generate_faces  # noqa: E402

REAL_SUBPATH = Path("shared") / "data" / "real_faces_unlabeled"
TOP_COMPONENTS = 10
RADII = np.arange(1, 48)  # cycles per image


def find_real_faces() -> Path | None:
    for parent in ROOT.parents:
        if (parent / REAL_SUBPATH).is_dir():
            return parent / REAL_SUBPATH
    return None


# ---------------------------------------------------------------- statistics


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two 1-D samples (via 200 quantiles)."""
    q = np.linspace(0.0025, 0.9975, 200)
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


def standardized(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64)
    mean = x.mean(axis=(1, 2), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2), keepdims=True), 1.0)
    return (x - mean) / std


def gradient_magnitude(images: np.ndarray) -> np.ndarray:
    """|grad| by central differences on the interior, [N, 94, 94] grey levels per pixel."""
    x = images.astype(np.float64)
    gx = (x[:, 1:-1, 2:] - x[:, 1:-1, :-2]) / 2
    gy = (x[:, 2:, 1:-1] - x[:, :-2, 1:-1]) / 2
    return np.hypot(gx, gy)


_HANN = np.outer(np.hanning(96), np.hanning(96))
_FY, _FX = np.meshgrid(np.fft.fftfreq(96) * 96, np.fft.fftfreq(96) * 96, indexing="ij")
_RADIUS = np.rint(np.hypot(_FX, _FY)).astype(int)


def radial_spectra(images: np.ndarray) -> np.ndarray:
    """Per image, the fraction of its (windowed, mean-removed) power at each radius
    in RADII: [N, len(RADII)]."""
    x = images.astype(np.float64)
    x = (x - x.mean(axis=(1, 2), keepdims=True)) * _HANN
    power = np.abs(np.fft.fft2(x)) ** 2
    out = np.stack([power[:, _RADIUS == r].mean(axis=1) for r in RADII], axis=1)
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def spectrum_slope(spectrum: np.ndarray) -> float:
    """Slope of log power against log frequency over 2..40 cycles per image."""
    keep = (RADII >= 2) & (RADII <= 40)
    return float(np.polyfit(np.log(RADII[keep]), np.log(spectrum[keep]), 1)[0])


def features(images: np.ndarray) -> np.ndarray:
    """A small per-image description for the real-or-synthetic test."""
    x = images.astype(np.float64)
    z = standardized(images)
    g = gradient_magnitude(images) / np.maximum(x.std(axis=(1, 2)), 1.0)[:, None, None]
    spectra = np.log(radial_spectra(images))
    bands = [
        spectra[:, (RADII >= lo) & (RADII < hi)].mean(axis=1)
        for lo, hi in ((1, 3), (3, 6), (6, 12), (12, 24), (24, 48))
    ]
    small = z.reshape(len(z), 6, 16, 6, 16).mean(axis=(2, 4)).reshape(len(z), -1)
    columns = [
        x.mean(axis=(1, 2)),
        x.std(axis=(1, 2)),
        *np.quantile(z.reshape(len(z), -1), [0.02, 0.25, 0.5, 0.75, 0.98], axis=1),
        *np.quantile(g.reshape(len(g), -1), [0.25, 0.5, 0.9, 0.99], axis=1),
        *bands,
    ]
    return np.column_stack([*columns, small])


def separability_auc(real: np.ndarray, synthetic: np.ndarray, folds: int = 10, seed: int = 0) -> float:
    """Cross-validated AUC of a shrunk linear discriminant telling real (positive)
    from synthetic faces by :func:`features`."""
    fr, fs = features(real), features(synthetic)
    rng = np.random.default_rng(seed)
    real_fold = rng.permutation(len(fr)) % folds
    synth_fold = rng.permutation(len(fs)) % folds
    scores_r, scores_s = np.empty(len(fr)), np.empty(len(fs))
    for k in range(folds):
        tr, ts = fr[real_fold != k], fs[synth_fold != k]
        both = np.concatenate([tr, ts])
        mu, sd = both.mean(axis=0), both.std(axis=0) + 1e-9
        tr, ts = (tr - mu) / sd, (ts - mu) / sd
        within = np.cov(np.concatenate([tr - tr.mean(0), ts - ts.mean(0)]).T)
        shrunk = 0.5 * within + 0.5 * np.eye(len(within))  # heavy shrinkage: only 18 real faces per fold
        w = np.linalg.solve(shrunk, tr.mean(0) - ts.mean(0))
        scores_r[real_fold == k] = ((fr[real_fold == k] - mu) / sd) @ w
        scores_s[synth_fold == k] = ((fs[synth_fold == k] - mu) / sd) @ w
    # AUC: the chance that a real face scores above a synthetic one (ties count half).
    greater = (scores_r[:, None] > scores_s[None, :]).mean()
    ties = (scores_r[:, None] == scores_s[None, :]).mean()
    return float(greater + ties / 2)


def principal_components(images: np.ndarray, k: int) -> np.ndarray:
    """The top k principal directions [k, 9216] of images ([0, 1] pixels, centred),
    from the eigenvectors of the N x N Gram matrix (N << 9216: fast)."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    x = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(x @ x.T)
    top = np.argsort(values)[::-1][:k]
    basis = vectors[:, top].T @ x
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def variance_explained(basis: np.ndarray, images: np.ndarray) -> float:
    """Fraction of the variance of ``images`` (around their own mean, [0, 1] pixels)
    that lies in the span of the orthonormal rows of ``basis``."""
    x = images.reshape(len(images), -1).astype(np.float64) / 255
    x = x - x.mean(axis=0)
    total = np.square(x).sum()
    return float(np.square(x @ basis.T).sum() / total)


def statistics(real: np.ndarray, synthetic: np.ndarray) -> dict:
    """Every number of the report, for both sets and the gaps between them."""
    out: dict = {"real_faces": len(real), "synthetic_faces": len(synthetic)}
    for name, images in (("real", real), ("synthetic", synthetic)):
        x = images.astype(np.float64)
        means, stds = x.mean(axis=(1, 2)), x.std(axis=(1, 2))
        g = gradient_magnitude(images)
        spectrum = np.exp(np.log(radial_spectra(images)).mean(axis=0))
        out[name] = {
            "mean_of_means": float(means.mean()),
            "sd_of_means": float(means.std()),
            "mean_contrast": float(stds.mean()),
            "sd_of_contrast": float(stds.std()),
            "clipped_fraction": float(((images == 0) | (images == 255)).mean()),
            "mean_gradient": float(g.mean()),
            "gradient_p90": float(np.quantile(g, 0.9)),
            "gradient_over_contrast": float((g.mean(axis=(1, 2)) / np.maximum(stds, 1)).mean()),
            "spectrum_slope": spectrum_slope(spectrum),
            "high_frequency_power": float(spectrum[RADII >= 24].sum()),
            "spectrum": spectrum.tolist(),
        }
    gr, gs = gradient_magnitude(real), gradient_magnitude(synthetic)
    zr, zs = standardized(real), standardized(synthetic)
    sr, ss = (np.log10(np.array(out[k]["spectrum"])) for k in ("real", "synthetic"))
    keep = RADII >= 2
    mean_r, mean_s = real.astype(np.float64).mean(axis=0), synthetic.astype(np.float64).mean(axis=0)
    spread_r, spread_s = real.astype(np.float64).std(axis=0), synthetic.astype(np.float64).std(axis=0)
    basis = principal_components(synthetic, TOP_COMPONENTS)
    out["gaps"] = {
        "intensity_w1": wasserstein(real.ravel(), synthetic.ravel()),
        "standardized_intensity_w1": wasserstein(zr.ravel(), zs.ravel()),
        "gradient_w1": wasserstein(gr.ravel(), gs.ravel()),
        "spectrum_db_rms": float(10 * np.sqrt(np.mean(np.square(sr[keep] - ss[keep])))),
        "mean_face_rms": float(np.sqrt(np.mean(np.square(mean_r - mean_s)))),
        "mean_face_correlation": float(np.corrcoef(mean_r.ravel(), mean_s.ravel())[0, 1]),
        "spread_map_correlation": float(np.corrcoef(spread_r.ravel(), spread_s.ravel())[0, 1]),
        "real_variance_in_synthetic_top10": variance_explained(basis, real),
        "synthetic_variance_in_synthetic_top10": variance_explained(basis, synthetic),
        "real_vs_synthetic_auc": separability_auc(real, synthetic),
    }
    out["_maps"] = {
        "mean_real": mean_r,
        "mean_synthetic": mean_s,
        "spread_real": spread_r,
        "spread_synthetic": spread_s,
    }
    return out


# ---------------------------------------------------------------- transfer signs


def transfer_signs(run: Path, real: np.ndarray, synthetic: np.ndarray) -> dict:
    """Flip inconsistency and spread of a run's predictions on real and synthetic faces."""
    import fkd_ops  # noqa: F401  (registers the Keras objects)
    from fkd_ops.cli import _predict_on_faces  # the command's own way to run a run
    from fkd_ops.keypoints import FLIP_PAIRS, IMAGE_SIZE

    order = np.arange(15)
    for a, b in FLIP_PAIRS:
        order[a], order[b] = b, a

    def signs(images: np.ndarray) -> dict:
        both = _predict_on_faces(run, np.concatenate([images, images[:, :, ::-1]]))
        p, q = both[: len(images)].reshape(-1, 15, 2), both[len(images) :].reshape(-1, 15, 2)[:, order]
        q[..., 0] = IMAGE_SIZE - q[..., 0]
        spread = np.sqrt(np.mean(np.square(p - p.mean(axis=0))))
        return {"flip_inconsistency_px": float(np.sqrt(np.mean(np.square(p - q)))), "spread_px": float(spread)}

    return {"run": str(run), "real": signs(real), "synthetic": signs(synthetic)}


# ---------------------------------------------------------------- pictures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def contact_sheet(real: np.ndarray, synthetic: np.ndarray, path: Path, title: str) -> None:
    """Real faces (left block) beside as many synthetic ones (right block)."""
    plt = _pyplot()
    cols = 5
    rows = -(-len(real) // cols)
    fig, axes = plt.subplots(rows, 2 * cols + 1, figsize=(1.1 * (2 * cols + 1), 1.1 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, image in enumerate(real):
        axes[i // cols, i % cols].imshow(image, cmap="gray", vmin=0, vmax=255)
    for i, image in enumerate(synthetic[: len(real)]):
        axes[i // cols, cols + 1 + i % cols].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0, cols // 2].set_title("real (unlabeled)", fontsize=9)
    axes[0, cols + 1 + cols // 2].set_title(f"synthetic ({title})", fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.04, hspace=0.04)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def stats_figure(real: np.ndarray, synthetic: np.ndarray, stats: dict, path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(13, 6))
    bins = np.arange(0, 257, 8)
    for images, label in ((real, "real"), (synthetic, "synthetic")):
        axes[0, 0].hist(images.ravel(), bins=bins, density=True, histtype="step", label=label)
        axes[0, 1].hist(
            np.clip(gradient_magnitude(images).ravel(), 0, 60), bins=60, density=True, histtype="step", label=label
        )
        axes[0, 2].loglog(
            RADII, stats[label]["spectrum"], label=f"{label} (slope {stats[label]['spectrum_slope']:.2f})"
        )
    axes[0, 1].set_yscale("log")
    for ax, title in zip(axes[0, :3], ("grey levels", "gradient magnitude (clipped at 60)", "radial power spectrum")):
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    maps = stats["_maps"]
    for ax, key, title in (
        (axes[1, 0], "mean_real", "mean real face"),
        (axes[1, 1], "mean_synthetic", "mean synthetic face"),
        (axes[1, 2], "spread_real", "per-pixel std, real"),
        (axes[1, 3], "spread_synthetic", "per-pixel std, synthetic"),
    ):
        ax.imshow(maps[key], cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    axes[0, 3].axis("off")
    gaps = stats["gaps"]
    axes[0, 3].text(0, 1, "\n".join(f"{k}: {v:.3f}" for k, v in gaps.items()), fontsize=7, va="top", family="monospace")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)


# ---------------------------------------------------------------- report


def report(stats: dict, generation: dict | None, signs: list[dict]) -> str:
    r, s, g = stats["real"], stats["synthetic"], stats["gaps"]
    lines = [
        f"Realism of the synthetic faces (generator v{GENERATOR_VERSION}): {stats['synthetic_faces']} synthetic "
        f"training faces vs {stats['real_faces']} real unlabeled faces",
        "",
        f"{'statistic':<34}{'real':>10}{'synthetic':>11}",
    ]
    for key in (
        "mean_of_means",
        "sd_of_means",
        "mean_contrast",
        "sd_of_contrast",
        "clipped_fraction",
        "mean_gradient",
        "gradient_p90",
        "gradient_over_contrast",
        "spectrum_slope",
        "high_frequency_power",
    ):
        lines.append(f"{key:<34}{r[key]:>10.3f}{s[key]:>11.3f}")
    floor = stats["floor"]
    lines += [
        "",
        "gaps between the sets (0 = alike; correlations, shares: higher = alike); 'floor': the same",
        f"gap between {stats['real_faces']} synthetic faces and the other synthetic ones, i.e. what a",
        f"generator indistinguishable from the real faces would score against only {stats['real_faces']} of them",
        f"  {'gap':<40}{'value':>10}{'floor':>10}",
    ]
    for key, value in g.items():
        lines.append(f"  {key:<40}{value:>10.3f}{floor[key]:>10.3f}")
    if generation is not None:
        lines += [
            "",
            f"generation of the default set (7049 + 1783 faces, written as Kaggle CSV): {generation['wall_s']:.1f} s "
            f"wall, {generation['cpu_s']:.1f} s CPU over all threads ({generation['cpus']} cores, load "
            f"{generation['load_1min']:.1f} at the end)",
        ]
    for sign in signs:
        lines += [
            "",
            f"transfer signs of {sign['run']} (label-free; lower inconsistency at a similar spread is better):",
            f"  real faces:                  flip inconsistency {sign['real']['flip_inconsistency_px']:.3f} px, "
            f"spread {sign['real']['spread_px']:.3f} px",
            f"  synthetic test faces (v{GENERATOR_VERSION}): flip inconsistency "
            f"{sign['synthetic']['flip_inconsistency_px']:.3f} px, spread {sign['synthetic']['spread_px']:.3f} px",
        ]
    return "\n".join(lines) + "\n"


def floor_of(synthetic: np.ndarray, k: int, draws: int = 5) -> dict:
    """The gaps between k synthetic faces and the others, averaged over `draws`
    disjoint sets of k: what a generator that matched the real faces perfectly
    would still score against only k of them."""
    gaps = [
        statistics(synthetic[i * k : (i + 1) * k], np.delete(synthetic, np.s_[i * k : (i + 1) * k], axis=0))["gaps"]
        for i in range(draws)
    ]
    return {key: float(np.mean([g[key] for g in gaps])) for key in gaps[0]}


def time_generation() -> dict:
    """Wall and CPU seconds (all threads) to write the default built-in set, and the load."""
    from fkd_ops.data.builtin import DEFAULT_TEST, DEFAULT_TRAIN
    from fkd_ops.data.synthetic import write_synthetic_kaggle

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        write_synthetic_kaggle(tmp, n_train=DEFAULT_TRAIN, n_test=DEFAULT_TEST, seed=0)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600, help="synthetic faces to measure (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=None, help="folder of real faces (default: ../shared/...)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"realism-v{GENERATOR_VERSION}")
    parser.add_argument("--time-generation", action="store_true", help="also time writing the default set")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="trained runs to check on the real faces")
    args = parser.parse_args()
    real_dir = args.real or find_real_faces()
    if real_dir is None:
        print(
            f"no real faces: none of this repository's parent folders holds {REAL_SUBPATH}; give --real",
            file=sys.stderr,
        )
        return 1
    real = load_faces([real_dir]).faces
    synthetic = generate_faces(args.n, args.seed).images
    stats = statistics(real, synthetic)
    stats["floor"] = floor_of(synthetic, len(real))
    generation = time_generation() if args.time_generation else None
    if args.runs:  # faces no run has trained on: the built-in test set's first ones
        held_out = generate_faces(200, args.seed, test=True).images
    signs = [transfer_signs(run, real, held_out) for run in args.runs]
    text = report(stats, generation, signs)
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.txt").write_text(text)
    data = {k: v for k, v in stats.items() if k != "_maps"}
    data.update(generator_version=GENERATOR_VERSION, generation=generation, transfer_signs=signs, cpus=os.cpu_count())
    Path(f"{args.out}.json").write_text(json.dumps(data, indent=1) + "\n")
    contact_sheet(
        real,
        synthetic,
        Path(f"{args.out}-sheet.png"),
        f"generator v{GENERATOR_VERSION}, first faces of seed {args.seed}",
    )
    stats_figure(real, synthetic, stats, Path(f"{args.out}-stats.png"))
    print(f"wrote {args.out}.txt, .json, -sheet.png, -stats.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
