"""Mean 40-point shapes of several domains overlaid in one crop frame: where do the two domains disagree?"""

from __future__ import annotations

import io

import numpy as np

from face2anime.landmarks.schema import FACE40_BROWS, FACE40_CONTOUR, FACE40_LEFT_EYE, FACE40_MOUTH, FACE40_RIGHT_EYE

# Polylines that make a 40-point shape readable: (indices, closed).
_PARTS = (
    (FACE40_CONTOUR, False),
    (FACE40_BROWS[:3], False),
    (FACE40_BROWS[3:], False),
    # eye loops: upper lid outer->inner, then lower lid back (left eye stores lower outer, mid, inner)
    ((23, 24, 25, 28, 27, 26), True),
    ((29, 30, 31, 34, 33, 32), True),
    ((36, 37, 38, 39), True),
)
assert set(_PARTS[3][0]) == set(FACE40_LEFT_EYE) and set(_PARTS[4][0]) == set(FACE40_RIGHT_EYE)
assert set(_PARTS[5][0]) == set(FACE40_MOUTH)


def plot_mean_shapes(shapes: dict[str, np.ndarray], size: int, title: str) -> np.ndarray:
    """PNG-ready RGB uint8 image: each (40, 2) shape drawn with its parts, in a size x size crop frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 6.2), dpi=100)
    styles = ("-", "--", ":", "-.")
    colours = ("tab:red", "tab:blue", "tab:green", "tab:purple")
    for k, (label, pts) in enumerate(shapes.items()):
        pts = np.asarray(pts, dtype=np.float64)
        c, ls = colours[k % len(colours)], styles[k % len(styles)]
        for idx, closed in _PARTS:
            poly = pts[list(idx) + ([idx[0]] if closed else [])]
            ax.plot(poly[:, 0], poly[:, 1], ls, color=c, lw=1.2)
        ax.plot(pts[:, 0], pts[:, 1], "o", color=c, ms=2.5, label=label)
    ax.set_xlim(-0.5, size - 0.5)
    ax.set_ylim(size - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), fontsize=8, frameon=False, ncol=1)
    fig.tight_layout()
    ax.grid(alpha=0.2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    buf.seek(0)
    from PIL import Image

    return np.asarray(Image.open(buf).convert("RGB"))
