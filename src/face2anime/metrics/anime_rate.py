"""A "looks anime" number: a linear probe on frozen features, fitted on anime vs photo TRAINING crops.

KID says how far a set of outputs is from the anime set; it does not say how many single outputs would
pass for anime. The probe does: an L2-regularised logistic regression on the feature net's pooled
features, fitted on the anime training crops (label 1) against the training photos (label 0) and
never on generator outputs, so no variant can be fitted to it. `anime_rate` = the share of a set whose
p(anime) > 0.5. Beside a variant's rate on the held-out photos' outputs stand the raw held-out photos'
rate (what doing nothing scores) and the held-out anime crops' rate (what real anime scores).

Definitions (features x (d,), standardised z = (x - mean) / std with the training set's mean and std,
a constant feature's std taken as 1):
    p(anime | x) = sigmoid(w . z + b)
    loss(w, b)   = sum_i c_i * log(1 + exp(-y_i (w . z_i + b)))  +  l2 / (2 N) * |w|^2
with y = +1 (anime) / -1 (photo), N training crops, and balanced class weights c_i = 1 / (2 n_class(i))
(each class weighs one half, so the class sizes do not move the boundary); the bias is not penalised.
This is scikit-learn's LogisticRegression(C = 1 / l2, class_weight="balanced") divided by N.
Fitted by L-BFGS from zero: deterministic for the same features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

PREFIX = "probe_"


@dataclass(frozen=True)
class LinearProbe:
    """Standardisation and weights of the fitted probe (all float64)."""

    mean: np.ndarray    # (d,)
    std: np.ndarray     # (d,)
    w: np.ndarray       # (d,)
    b: float

    def logits(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, dtype=np.float64) - self.mean) / self.std
        return z @ self.w + self.b

    def prob(self, feats: np.ndarray) -> np.ndarray:
        """p(anime) per row of `feats` (n, d)."""
        return expit(self.logits(feats))

    def to_arrays(self, prefix: str = PREFIX) -> dict[str, np.ndarray]:
        """Arrays for an .npz (`probe_mean`, `probe_std`, `probe_w`, `probe_b`)."""
        return {f"{prefix}mean": self.mean, f"{prefix}std": self.std, f"{prefix}w": self.w,
                f"{prefix}b": np.array(self.b, dtype=np.float64)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = PREFIX) -> LinearProbe:
        return cls(mean=np.asarray(arrays[f"{prefix}mean"], dtype=np.float64),
                   std=np.asarray(arrays[f"{prefix}std"], dtype=np.float64),
                   w=np.asarray(arrays[f"{prefix}w"], dtype=np.float64),
                   b=float(arrays[f"{prefix}b"]))


def probe_keys(prefix: str = PREFIX) -> set[str]:
    """The .npz keys `to_arrays` writes."""
    return {f"{prefix}{k}" for k in ("mean", "std", "w", "b")}


def _objective(params: np.ndarray, z: np.ndarray, y: np.ndarray, c: np.ndarray,
               reg: float) -> tuple[float, np.ndarray]:
    """Weighted logistic loss + reg/2 |w|^2 and its gradient; params = (w, b)."""
    w, b = params[:-1], params[-1]
    margin = y * (z @ w + b)
    loss = -float(c @ log_expit(margin)) + 0.5 * reg * float(w @ w)
    g = -c * y * expit(-margin)         # d loss / d logit
    return loss, np.concatenate([z.T @ g + reg * w, [g.sum()]])


def fit_linear_probe(anime_feats: np.ndarray, photo_feats: np.ndarray, l2: float) -> LinearProbe:
    """The probe of the module docstring, fitted on (n_a, d) anime and (n_p, d) photo features."""
    a = np.asarray(anime_feats, dtype=np.float64)
    p = np.asarray(photo_feats, dtype=np.float64)
    if a.ndim != 2 or p.ndim != 2 or a.shape[1] != p.shape[1]:
        raise ValueError(f"feature sets must be (n, d) with the same d, got {a.shape} and {p.shape}")
    if len(a) < 1 or len(p) < 1:
        raise ValueError(f"the probe needs at least one sample per class, got {len(a)} anime and {len(p)} photos")
    if not l2 > 0:
        raise ValueError(f"l2 must be > 0 (an unpenalised probe diverges on separable features), got {l2}")
    x = np.concatenate([a, p])
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = (x - mean) / std
    y = np.concatenate([np.ones(len(a)), -np.ones(len(p))])
    c = np.concatenate([np.full(len(a), 0.5 / len(a)), np.full(len(p), 0.5 / len(p))])
    reg = float(l2) / len(x)
    res = minimize(_objective, np.zeros(z.shape[1] + 1), args=(z, y, c, reg), jac=True, method="L-BFGS-B",
                   options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-15})
    return LinearProbe(mean=mean, std=std, w=res.x[:-1].copy(), b=float(res.x[-1]))


def anime_rate(probe: LinearProbe, feats: np.ndarray) -> float:
    """Share of the rows of `feats` (n, d) the probe calls anime (p(anime) > 0.5, i.e. logit > 0)."""
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) == 0:
        raise ValueError("anime_rate of an empty set")
    return float((probe.logits(feats) > 0).mean())
