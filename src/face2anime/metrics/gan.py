"""Numbers for judging a photo-to-anime generator: style distance (KID), content kept, collapse and copy.

The study judged its GANs by eye and saw two failure modes: collapse (the same output for every input)
and copying (the output is the input). Each gets a number here, computed from features of a frozen
network, so a regression shows up in `metrics/gan/*.json` instead of in a contact sheet.

All functions take numpy arrays and compute in float64, so results do not depend on batch order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------- KID
def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for every row pair: (m, d), (n, d) -> (m, n)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between feature sets (m, d) and (n, d) with the cubic polynomial kernel.

    Diagonal terms k(x_i, x_i) are left out of the within-set means, which is what makes it unbiased
    (and lets it go slightly negative when the two sets come from the same distribution).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {m} and {n}")
    kxx = polynomial_kernel(x, x)
    kyy = polynomial_kernel(y, y)
    kxy = polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


@dataclass(frozen=True)
class KID:
    """Mean and standard deviation of MMD^2 over random equal-size subsets of the two sets."""

    mean: float
    std: float
    subsets: int
    subset_size: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "std": self.std, "subsets": self.subsets, "subset_size": self.subset_size}


def kid(x: np.ndarray, y: np.ndarray, subsets: int, subset_size: int, seed: int) -> KID:
    """KID (Binkowski et al. 2018): MMD^2_u averaged over `subsets` draws without replacement.

    The subset size is capped at half the smaller set: subsets as large as a whole set would all be the
    same set, which gives every draw the same value and a meaningless std of 0.
    """
    size = int(min(subset_size, len(x) // 2, len(y) // 2))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(max(1, int(subsets))):
        ix = rng.choice(len(x), size, replace=False)
        iy = rng.choice(len(y), size, replace=False)
        values.append(mmd2_unbiased(x[ix], y[iy]))
    values_arr = np.asarray(values)
    return KID(float(values_arr.mean()), float(values_arr.std()), len(values), size)


# ---------------------------------------------------------------- checkerboard artefacts
def checkerboard_power(images: np.ndarray, period: int = 2) -> float:
    """Share of the images' AC spectral power at the frequencies of a `period`-pixel grid, mean over images.

    Up-sampling by stride-2 transposed convs prints a period-2 checkerboard on the output; its power sits
    at the bins (k H/period, l W/period), DC excluded (for period 2: the Nyquist bins). Photos put almost
    nothing there (~1e-4); a checkerboarded output puts several percent. Images: (N, H, W[, C]), any range.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., None]
    n, h, w, _ = x.shape
    if h % period or w % period:
        raise ValueError(f"image size {h}x{w} is not a multiple of the period {period}")
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2               # (N, H, W, C)
    rows, cols = np.arange(0, h, h // period), np.arange(0, w, w // period)
    grid = power[:, rows][:, :, cols].sum(axis=(1, 2, 3))          # DC is 0 after removing the mean
    total = power.sum(axis=(1, 2, 3))
    share = np.divide(grid, total, out=np.zeros_like(grid), where=total > 0)
    return float(share.mean())


# ---------------------------------------------------------------- content, collapse, copy
def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all unordered pairs of rows: how spread out a set is."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if len(f) < 2:
        raise ValueError("spread needs at least 2 samples")
    sq = (f * f).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * f @ f.T, 0.0)
    iu = np.triu_indices(len(f), k=1)
    return float(np.sqrt(d2[iu]).mean())


def spread_ratio(outputs: np.ndarray, inputs: np.ndarray) -> float | None:
    """Spread of the outputs / spread of the inputs (features): near 0 = collapse; None if inputs are all equal."""
    spread_in = mean_pairwise_distance(inputs)
    if spread_in == 0.0:
        return None
    return mean_pairwise_distance(outputs) / spread_in


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cos(a_i, b_i) per row pair of two (n, d) arrays (0 where a row is all zeros on both sides)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    cos = np.divide(dot, norm, out=np.ones_like(dot), where=norm > 0)
    return 1.0 - cos


def mean_abs_pixel_difference(outputs: np.ndarray, inputs: np.ndarray) -> float:
    """Mean |output - input| over all pixels, on images scaled to [0, 1]: near 0 = the generator copies."""
    out = np.asarray(outputs, dtype=np.float64)
    inp = np.asarray(inputs, dtype=np.float64)
    if out.shape != inp.shape:
        raise ValueError(f"shape mismatch: {out.shape} vs {inp.shape}")
    return float(np.abs(out - inp).mean())


@dataclass(frozen=True)
class FailureChecks:
    """The study's two failure modes as numbers plus flags (thresholds come from params)."""

    spread_ratio: float | None
    collapse: bool
    copy_distance: float
    copy: bool

    def as_dict(self) -> dict[str, float | bool | None]:
        return {"spread_ratio": self.spread_ratio, "collapse": self.collapse,
                "copy_distance": self.copy_distance, "copy": self.copy}


def failure_checks(out_features: np.ndarray, in_features: np.ndarray, out_images: np.ndarray,
                   in_images: np.ndarray, collapse_ratio_below: float, copy_distance_below: float) -> FailureChecks:
    """Collapse: outputs far less spread out than inputs. Copy: outputs nearly equal to the inputs, pixel by pixel."""
    ratio = spread_ratio(out_features, in_features)
    distance = mean_abs_pixel_difference(out_images, in_images)
    return FailureChecks(
        spread_ratio=ratio,
        collapse=bool(ratio is not None and ratio < collapse_ratio_below),
        copy_distance=distance,
        copy=bool(distance < copy_distance_below),
    )
