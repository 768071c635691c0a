"""Pictures and tables comparing the GAN variants: per-variant grids, a side-by-side grid, a Markdown summary.

A person judges a photo-to-anime model by looking, so every number in `metrics/gan/*.json` comes with
pictures of the same held-out photos through every variant, and the DAN's points on each output show
whether the face parts stayed where the photo had them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from face2anime.landmarks import schema
from face2anime.viz.sheets import PALETTE, contact_sheet, draw_points

FLAG_NAMES = ("collapse", "copy")


def region_colors() -> list[tuple[int, int, int]]:
    """One RGB colour per FACE40 point, by region (contour, brows, eyes, nose, mouth)."""
    colors: list[tuple[int, int, int]] = [(255, 255, 255)] * schema.FACE40.n
    for region, idx in schema.FACE40_REGIONS.items():
        for i in idx:
            colors[i] = PALETTE[region]
    return colors


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so small crops stay sharp in the grids."""
    if scale == 1:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def _scaled(points: np.ndarray, scale: int) -> np.ndarray:
    # pixel centres at integers: x_big = (x + 0.5) * scale - 0.5
    return (np.asarray(points, dtype=np.float64) + 0.5) * scale - 0.5


def points_view(output: np.ndarray, dan: np.ndarray, target: np.ndarray, scale: int) -> np.ndarray:
    """The output with the DAN's points (dots, coloured by region) and the photo's target points (white crosses)."""
    big = upscale(output, scale)
    big = draw_points(big, _scaled(target, scale), color=PALETTE["truth"], radius=1.2 * scale / 2 + 1,
                      thickness=1, marker="cross")
    return draw_points(big, _scaled(dan, scale), color=region_colors(), radius=0.8 * scale / 2 + 0.5)


def variant_grid(photos: np.ndarray, outputs: np.ndarray, dan: np.ndarray, targets: np.ndarray,
                 scale: int = 2) -> np.ndarray:
    """Rows of photo | output | DAN points on the output (RGB uint8)."""
    tiles, labels = [], []
    for photo, out, pts, tgt in zip(photos, outputs, dan, targets, strict=True):
        tiles += [upscale(photo, scale), upscale(out, scale), points_view(out, pts, tgt, scale)]
        labels += ["photo", "output", "DAN dots / target x"]
    return contact_sheet(tiles, ncols=3, labels=labels, label_height=16)


def conditioning_image(cond: np.ndarray, size: int | None = None) -> np.ndarray:
    """A spade painter's input (8, S, S) in [-1, 1] as one RGB uint8 picture: the rough (channels 0-2) with
    the landmark channels (3-7: contour, brows, eyes, nose, mouth) drawn over it in white; resized to `size`."""
    cond = np.asarray(cond, dtype=np.float64)
    rough = (cond[:3].transpose(1, 2, 0) + 1.0) * 127.5
    lines = ((cond[3:].max(axis=0) + 1.0) / 2.0)[..., None] if len(cond) > 3 else 0.0
    img = np.clip(np.rint(rough * (1.0 - lines) + 255.0 * lines), 0, 255).astype(np.uint8)
    if size is not None and img.shape[0] != size:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def comparison_grid(photos: np.ndarray, outputs: Mapping[str, np.ndarray], scale: int = 2,
                    conditioning: tuple[str, np.ndarray] | None = None) -> np.ndarray:
    """Rows of photo | [conditioning] | each variant's output on that photo (RGB uint8).

    `conditioning`: (variant, (N, H, W, 3) RGB pictures of its input, `conditioning_image`), shown beside
    each photo: what the spade painter was given instead of the photo.
    """
    names = list(outputs)
    tiles, labels = [], []
    for i, photo in enumerate(photos):
        tiles.append(upscale(photo, scale))
        labels.append("photo")
        if conditioning is not None:
            tiles.append(upscale(conditioning[1][i], scale))
            labels.append(f"input of {conditioning[0]}")
        for name in names:
            tiles.append(upscale(outputs[name][i], scale))
            labels.append(name)
    return contact_sheet(tiles, ncols=1 + (conditioning is not None) + len(names), labels=labels, label_height=16)


# ---------------------------------------------------------------- tables
def summary_row(variant: str, m: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of one `metrics/gan/<variant>.json`, flat (one CSV / Markdown row)."""
    out, base = m["landmarks"]["output"], m["landmarks"]["photo_baseline"]
    style, rate, faith = m["style"], m["anime_rate"], m["faithfulness"]
    inception = style.get("inception_kid")
    return {
        "variant": variant,
        "landmark_rmse_px": out["rmse_px"],
        "photo_rmse_px": base["rmse_px"],
        "outlier_points_pct": out["outlier_points_pct"],
        "images_with_outlier_pct": out["images_with_outlier_pct"],
        "kid": style["kid"]["mean"],
        "kid_std": style["kid"]["std"],
        "photo_kid": style["kid_photo_baseline"]["mean"],
        "photo_kid_std": style["kid_photo_baseline"]["std"],
        "anime_floor_kid": style["kid_anime_floor"]["mean"],
        "inception_kid": None if inception is None else inception["mean"],
        "anime_rate": rate["output"],
        "photo_anime_rate": rate["photo_baseline"],
        "anime_anime_rate": rate["anime_heldout"],
        "point_error_to_target_px": faith["point_error_to_target_px"]["median"],
        "eye_angle_diff_deg": faith["eye_angle_diff_deg"]["median"],
        "skin_delta_e": faith["skin_delta_e"]["median"],
        "hair_delta_e": faith["hair_delta_e"]["median"],
        "content_distance": m["content"]["feature_cosine_distance"],
        "spread_ratio": m["collapse"]["spread_ratio"],
        "pixel_mae": m["copy"]["pixel_mae"],
        "flags": " ".join(f for f in FLAG_NAMES if m[f][f]) or "none",
    }


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)


def summary_markdown(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Mapping[str, Any]]) -> str:
    """`reports/summary.md`: one table of all variants, with what each column means."""
    first = next(iter(metrics.values()))
    style = first["style"]
    header = ("| variant | landmark RMSE px (photo) | outlier pts % | imgs w/ outlier % | KID (photo) | "
              "Inception KID | anime rate (photo) | pt err to target px | eye angle diff deg | skin dE | hair dE | "
              "content dist | spread ratio | pixel MAE | flags |")
    lines = [
        "# GAN variants on the held-out photos",
        "",
        "Generated by `dvc repro report` from `metrics/gan/*.json`; pictures in `reports/gan/`.",
        "",
        header,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {_cell(r['landmark_rmse_px'], 2)} ({_cell(r['photo_rmse_px'], 2)}) | "
            f"{_cell(r['outlier_points_pct'], 1)} | {_cell(r['images_with_outlier_pct'], 1)} | "
            f"{_cell(r['kid'])} ± {_cell(r['kid_std'])} ({_cell(r['photo_kid'])} ± {_cell(r['photo_kid_std'])}) | "
            f"{_cell(r['inception_kid'])} | "
            f"{_cell(r['anime_rate'], 2)} ({_cell(r['photo_anime_rate'], 2)}) | "
            f"{_cell(r['point_error_to_target_px'], 2)} | {_cell(r['eye_angle_diff_deg'], 2)} | "
            f"{_cell(r['skin_delta_e'], 1)} | {_cell(r['hair_delta_e'], 1)} | "
            f"{_cell(r['content_distance'])} | {_cell(r['spread_ratio'], 2)} | {_cell(r['pixel_mae'], 3)} | "
            f"{r['flags']} |")
    collapse_t = first["collapse"]["threshold"]
    copy_t = first["copy"]["threshold"]
    lines += [
        "",
        f"{first['photos']} held-out photos, {first['anime_faces']} held-out anime faces.",
        "",
        "- **landmark RMSE**: frozen anime DAN on the grayscale output vs the photo's 40 target points "
        "(px at 112, study formula 4.2, mean over images); in brackets the same for the raw photo. "
        f"Outliers: point error > {first['landmarks']['output']['outlier_threshold_px']:g} px.",
        f"- **KID**: unbiased MMD² (cubic polynomial kernel) to held-out anime faces on {style['feature_net']} "
        "features (mean ± std over the subsets); in brackets the raw photos' KID. Lower = closer to the anime "
        f"style; the floor (training anime crops vs the held-out ones) is {_cell(style['kid_anime_floor']['mean'])} ± "
        f"{_cell(style['kid_anime_floor']['std'])}. Not comparable with published (Inception) KID.",
        f"- **Inception KID**: {style['inception_note']}",
        "- **anime rate**: share of the outputs a linear probe on the same features calls anime (p > 0.5); "
        f"the probe is fitted on {first['anime_rate']['probe']['anime_faces']} training anime crops vs "
        f"{first['anime_rate']['probe']['photos']} training photos, never on outputs. In brackets the raw "
        f"photos' rate; held-out anime crops score {_cell(first['anime_rate']['anime_heldout'], 2)}.",
        "- **pt err to target**: frozen DAN on the output vs the points the painter means it to have (the photo's "
        "for the study generators, the shape-moved ones for spade), mean over the 40 points, median over images.",
        "- **eye angle diff**: |eye-line angle of the output's DAN points - the photo's points'|, median over images.",
        "- **skin / hair dE**: CIELAB delta E 1976 between the median colours of the output's and the photo's skin "
        "and hair regions (the output's from its target points), median over images.",
        "- **content dist**: 1 - cosine similarity of input and output feature maps (0 = same content).",
        f"- **spread ratio**: spread of the outputs' features / the photos'; below {collapse_t} flags **collapse** "
        "(the same output for every input).",
        f"- **pixel MAE**: mean |output - photo| in [0, 1]; below {copy_t} flags **copy** (the output is the input).",
        "",
    ]
    return "\n".join(lines)
