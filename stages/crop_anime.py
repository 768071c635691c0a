"""Stage crop_anime: canonical anime face crops (112 gray/colour + a large colour crop) by the framing rule.

Reads `data/anime/landmarks40.parquet` and `data/frames/`; writes `data/anime/crops.npz`,
`data/anime/crops.csv`, `metrics/crops.json` and `reports/anime_sheet.png` (docs/pipeline.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from face2anime.anime.crops import CROP_SIZE, FrameStore, crop_face, outside_fraction
from face2anime.errors import UserError
from face2anime.io import atomic_group, read_table, write_arrays, write_image, write_json, write_table
from face2anime.landmarks.framing import framing_square
from face2anime.landmarks.schema import FACE40, FACE40_REGIONS, points_from_table
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.sheets import PALETTE, contact_sheet, draw_points, rgb_to_bgr

TABLE_IN = Path("data/anime/landmarks40.parquet")
FRAMES_DIR = Path("data/frames")
CROPS_OUT = Path("data/anime/crops.npz")
CSV_OUT = Path("data/anime/crops.csv")
METRICS_OUT = Path("metrics/crops.json")
SHEET_OUT = Path("reports/anime_sheet.png")
CSV_COLUMNS = ["face_id", "frame_id", "video", "frame", "shot", "character"]


def point_colours() -> list[tuple[int, int, int]]:
    colours = [(255, 255, 255)] * FACE40.n
    for region, idx in FACE40_REGIONS.items():
        for i in idx:
            colours[i] = PALETTE[region]
    return colours


def main() -> str:
    params = load_settings("crop_anime")
    framing = load_settings("framing")
    large, max_outside, n_sheet = params.large_size, params.max_outside, params.sheet_faces
    if not TABLE_IN.exists():
        raise UserError(f"{TABLE_IN} not found: run the expand_contour stage first")
    table = read_table(TABLE_IN)
    frames = FrameStore(FRAMES_DIR)
    q40 = points_from_table(table, "q", 40)
    vis = table[[f"v{j:02d}" for j in range(FACE40.n)]].to_numpy().astype(bool)
    squares = framing_square(q40, framing)

    keep: list[int] = []
    out: dict[str, list] = {k: [] for k in ("gray112", "color112", "color_large", "points112", "square")}
    skipped: list[str] = []
    groups = table.reset_index(drop=True).groupby("frame_id", sort=False).indices
    rows_by_frame = sorted(groups.items(), key=lambda kv: kv[1][0])
    with tqdm(total=len(table), desc="crop_anime", unit="face", leave=False) as bar:
        for frame_id, rows in rows_by_frame:
            image = frames.rgb(frame_id)
            h, w = image.shape[:2]
            for r in rows:
                bar.update(1)
                if outside_fraction(squares[r], w, h) > max_outside:
                    skipped.append(str(table["face_id"].iat[r]))
                    continue
                crop = crop_face(image, q40[r], framing, large)
                keep.append(int(r))
                for k in out:
                    out[k].append(getattr(crop, k))
    if not keep:
        raise UserError(f"every face's square lies more than {max_outside:.0%} outside its frame: "
                        "nothing to crop (raise crop_anime.max_outside?)")
    order = np.argsort(keep, kind="stable")  # table order
    keep_arr = np.array(keep)[order]
    arrays = {k: np.stack(v)[order] for k, v in out.items()}
    face_ids = table["face_id"].to_numpy().astype(str)[keep_arr]
    with atomic_group(CROPS_OUT, CSV_OUT) as (npz_tmp, csv_tmp):  # both written, then renamed back to back
        write_arrays(npz_tmp, face_id=face_ids, gray112=arrays["gray112"], color112=arrays["color112"],
                     color_large=arrays["color_large"], points112=arrays["points112"].astype(np.float32),
                     visible=vis[keep_arr], square=arrays["square"].astype(np.float64))
        write_table(csv_tmp, table.iloc[keep_arr][CSV_COLUMNS].reset_index(drop=True))
    write_json(METRICS_OUT, {"faces": len(table), "cropped": len(keep_arr), "skipped_outside": len(skipped),
                             "skipped_faces": sorted(skipped), "large_size": large, "max_outside": max_outside})
    sel = np.linspace(0, len(keep_arr) - 1, min(n_sheet, len(keep_arr))).round().astype(int)
    colours = point_colours()
    tiles = [draw_points(np.repeat(np.repeat(arrays["color112"][i], 2, 0), 2, 1),
                         arrays["points112"][i] * 2 + 0.5, colours, radius=1.5) for i in sel]
    write_image(SHEET_OUT, rgb_to_bgr(contact_sheet(tiles, ncols=8, labels=[face_ids[i] for i in sel])))
    return f"{len(keep_arr)} faces cropped ({CROP_SIZE} px + {large} px), {len(skipped)} skipped (square outside frame)"


if __name__ == "__main__":
    run_stage("crop_anime", main, outputs=[CROPS_OUT, CSV_OUT, METRICS_OUT, SHEET_OUT])
