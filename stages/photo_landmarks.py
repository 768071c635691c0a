"""Stage photo_landmarks: face photos -> dlib 68 points -> 40-point targets + canonical crops (112 and large).

Reads the user's photo folder (or the demo portraits), writes `data/photos/crops.npz` + `photos.csv`,
`metrics/photos.json` and `reports/mean_shapes.png` (see docs/pipeline.md).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from face2anime.cli import run_stage
from face2anime.data.photo_crops import SIZE, auto_lid_shift, crop_views, mean_shape, shape_offset
from face2anime.data.photos import Jitter, PhotoSkip, demo_photos, list_photos, load_photo, split_by_photo
from face2anime.errors import UserError
from face2anime.io import read_arrays, read_table, write_arrays, write_image, write_json, write_table
from face2anime.landmarks.dlib68 import DlibLandmarker, NoFace
from face2anime.landmarks.framing import Framing
from face2anime.landmarks.schema import DLIB_MAPPINGS, dlib_to_face40
from face2anime.params import load_params
from face2anime.viz.mean_shapes import plot_mean_shapes

OUT_DIR = Path("data/photos")
METRICS = Path("metrics/photos.json")
REPORT = Path("reports/mean_shapes.png")
ANIME_CROPS = Path("data/anime/crops.npz")
ANIME_SPLIT = Path("data/anime/split.csv")
CSV_COLUMNS = ["photo_id", "path", "status", "reason", "split", "source_photo", "variant", "mirrored",
               "n_faces", "width", "height", "detect_scale", "det_score"]


def _anime_points() -> tuple[np.ndarray, np.ndarray, str] | None:
    """The anime crops' points112 + visibility (train faces when the split exists), or None if absent."""
    if not ANIME_CROPS.exists():
        return None
    arrays = read_arrays(ANIME_CROPS)
    points, visible = arrays["points112"].astype(np.float64), arrays["visible"].astype(bool)
    which = "all"
    if ANIME_SPLIT.exists():
        split = read_table(ANIME_SPLIT).set_index("face_id")["split"]
        train = np.array([split.get(f, "") == "train" for f in arrays["face_id"]])
        if train.any():
            points, visible, which = points[train], visible[train], "train"
    if len(points) == 0:
        return None
    return points, visible, which


def main() -> str:
    p = load_params("photo_landmarks")
    framing = Framing.from_params(load_params("framing"))
    seed = int(p["seed"])  # every random draw comes from np.random.default_rng([seed, photo]) below
    if p["mapping"] not in DLIB_MAPPINGS:
        raise UserError(f"photo_landmarks.mapping={p['mapping']!r}: choose one of {', '.join(DLIB_MAPPINGS)}")
    shift_param = p["lower_lid_shift"]
    if shift_param != "auto" and not isinstance(shift_param, (int, float)):
        raise UserError(f"photo_landmarks.lower_lid_shift={shift_param!r}: a number (px at 112) or 'auto'")
    if shift_param == "auto" and not ANIME_CROPS.exists():
        raise UserError(f"lower_lid_shift: auto needs the anime crops {ANIME_CROPS} (run crop_anime first) "
                        "or set a number (8.8 = the study)")
    if p["source"] == "demo":
        photos = demo_photos()
    elif p["source"] == "folder":
        photos = list_photos(p["photos_dir"])
    else:
        raise UserError(f"photo_landmarks.source={p['source']!r}: choose demo or folder")
    jitter = Jitter.from_params(p["jitter"])
    large = int(p["large_size"])
    landmarker = DlibLandmarker(detector=p["detector"], upsample=int(p["upsample"]),
                                threshold=float(p["det_threshold"]), policy=p["face_policy"],
                                max_side=int(p["max_side"]), predictor_path=p["predictor_path"],
                                cnn_path=p["cnn_path"])

    rows, views, skipped = [], [], []
    for photo in tqdm(photos, desc="photo_landmarks", unit="photo"):
        base = {"photo_id": photo.photo_id, "path": photo.label, "source_photo": photo.photo_id}
        try:
            image = load_photo(photo.path)
            face = landmarker.find_face(image)
        except (PhotoSkip, NoFace) as skip:
            n_faces = getattr(skip, "n_faces", 0)
            rows.append({**base, "status": "skipped", "reason": skip.reason, "n_faces": n_faces})
            skipped.append({"photo": photo.label, "reason": skip.reason})
            continue
        rng = np.random.default_rng([seed, zlib.crc32(photo.photo_id.encode())])
        note = f"{face.n_faces} faces, {p['face_policy']} kept" if face.n_faces > 1 else ""
        for cv in crop_views(image, face, framing, p["mapping"], large, int(p["variants"]), jitter, rng):
            rows.append({**base, "photo_id": f"{photo.photo_id}_v{cv.view_index:02d}", "status": "ok",
                         "reason": note, "variant": cv.view_index, "mirrored": int(cv.view.mirror),
                         "n_faces": face.n_faces, "width": image.shape[1], "height": image.shape[0],
                         "detect_scale": face.detect_scale, "det_score": face.detection.score})
            views.append(cv)
    if not views:
        reasons = ", ".join(sorted({s["reason"] for s in skipped})) or "none"
        raise UserError(f"no usable face in {len(photos)} photo(s) (skip reasons: {reasons}); "
                        "see the photo folder or set photo_landmarks.source: demo")

    df = pd.DataFrame(rows).reindex(columns=CSV_COLUMNS)
    for col in ("variant", "mirrored", "n_faces", "width", "height"):
        df[col] = df[col].astype("Int64")
    ok = df["status"] == "ok"
    sides = split_by_photo(df.loc[ok, "source_photo"].tolist(), float(p["test_fraction"]), seed)
    df["split"] = [sides[sp] if st == "ok" else "" for sp, st in zip(df["source_photo"], df["status"])]
    df["reason"] = df["reason"].fillna("")

    points68 = np.stack([v.points68_112 for v in views])
    raw = dlib_to_face40(points68, p["mapping"], 0.0)
    anime = _anime_points()
    shift_info: dict = {}
    if shift_param == "auto":
        if anime is None:
            raise UserError(f"lower_lid_shift: auto needs anime faces in {ANIME_CROPS}; it has none")
        train_rows = (df.loc[ok, "split"] == "train").to_numpy()
        shift, anime_open, photo_open = auto_lid_shift(anime[0], anime[1], raw[train_rows])
        shift_info = {"anime_eye_opening_px": round(anime_open, 3), "photo_eye_opening_px": round(photo_open, 3)}
    else:
        shift = float(shift_param)
    target = dlib_to_face40(points68, p["mapping"], shift)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    write_arrays(
        OUT_DIR / "crops.npz",
        photo_id=df.loc[ok, "photo_id"].to_numpy(dtype=str),
        color112=np.stack([v.color112 for v in views]),
        color_large=np.stack([v.color_large for v in views]),
        points112=target.astype(np.float32),
        points112_raw=raw.astype(np.float32),
        points68_112=points68.astype(np.float32),
        square=np.array([v.view.square for v in views], dtype=np.float64),
        to_crop112=np.stack([v.to_crop112 for v in views]),
    )
    write_table(OUT_DIR / "photos.csv", df)

    shapes = {"photos (dlib, raw)": mean_shape(raw), f"photos (target, lid shift {shift:.1f} px)": mean_shape(target)}
    offsets = {}
    if anime is not None:
        anime_mean = mean_shape(anime[0], anime[1])
        shapes = {f"anime ({anime[2]} faces, n={len(anime[0])})": anime_mean, **shapes}
        offsets = {"raw": shape_offset(anime_mean, shapes["photos (dlib, raw)"]),
                   "target": shape_offset(anime_mean, mean_shape(target))}
    write_image(REPORT, plot_mean_shapes(shapes, SIZE, "mean 40-point shapes in crop pixels at 112")[..., ::-1])

    reasons = pd.Series([s["reason"] for s in skipped], dtype=str).value_counts().sort_index()
    n_ok = int(df.loc[ok, "source_photo"].nunique())
    metrics = {
        "source": p["source"],
        "photos": len(photos),
        "ok": n_ok,
        "crops": int(ok.sum()),
        "skipped": int(len(skipped)),
        "skipped_by_reason": {k: int(v) for k, v in reasons.items()},
        "skipped_photos": skipped,
        "multi_face_photos": int(df.loc[ok & (df["variant"] == 0), "n_faces"].gt(1).sum()),
        "downscaled_photos": int(df.loc[ok & (df["variant"] == 0), "detect_scale"].lt(1).sum()),
        "train_photos": sum(v == "train" for v in sides.values()),
        "test_photos": sum(v == "test" for v in sides.values()),
        "detector": p["detector"],
        "face_policy": p["face_policy"],
        "mapping": p["mapping"],
        "lower_lid_shift_px": round(shift, 3),
        "lower_lid_shift_source": "auto" if shift_param == "auto" else "param",
        **shift_info,
        "anime_faces_compared": 0 if anime is None else len(anime[0]),
        "mean_offset_to_anime_px": offsets or None,
    }
    write_json(METRICS, metrics)
    off = f", mean offset to anime {offsets['target']['mean']:.2f} px" if offsets else ", no anime crops to compare"
    return (f"{n_ok}/{len(photos)} photos ok ({len(skipped)} skipped), {int(ok.sum())} crops, "
            f"{metrics['train_photos']} train / {metrics['test_photos']} test photos, lid shift {shift:.2f} px{off}")


if __name__ == "__main__":
    run_stage("photo_landmarks", main)
