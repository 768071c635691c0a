"""Stage split: seeded train/val/test split of the cropped anime faces, grouped by shot and character.

Reads `data/anime/crops.csv` (checked against the face_id of `crops.npz`); writes `data/anime/split.csv`
(face_id, split) and `metrics/split.json`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from face2anime.anime.crops import check_crops_pair
from face2anime.anime.split import SPLITS, assign_splits, face_groups, split_summary
from face2anime.errors import UserError
from face2anime.io import write_json, write_table
from face2anime.settings import load_settings
from face2anime.stage import run_stage

CROPS_CSV = Path("data/anime/crops.csv")
SPLIT_OUT = Path("data/anime/split.csv")
METRICS_OUT = Path("metrics/split.json")


def main() -> str:
    params = load_settings("split")
    if not CROPS_CSV.exists():
        raise UserError(f"{CROPS_CSV} not found: run the crop_anime stage first")
    try:
        df = pd.read_csv(CROPS_CSV, dtype={"face_id": str, "video": str, "character": str}, keep_default_na=False)
    except (ValueError, OSError) as err:   # empty (EmptyDataError), malformed (ParserError), not text
        raise UserError(f"{CROPS_CSV} could not be read ({type(err).__name__}): re-run the crop_anime stage") from None
    missing = [c for c in ("face_id", "video", "shot", "character") if c not in df.columns]
    if missing:
        raise UserError(f"{CROPS_CSV} lacks columns: {', '.join(missing)}")
    check_crops_pair(CROPS_CSV.with_suffix(".npz"), df["face_id"], CROPS_CSV)
    if df.empty:
        raise UserError(f"{CROPS_CSV} has no faces to split")
    fractions = {s: getattr(params, s) for s in SPLITS}
    groups = face_groups(df)
    split = assign_splits(groups, fractions, params.seed)
    write_table(SPLIT_OUT, pd.DataFrame({"face_id": df["face_id"], "split": split}))
    summary = split_summary(groups, split)
    summary.update({"seed": params.seed, "target": fractions})
    write_json(METRICS_OUT, summary)
    parts = ", ".join(f"{s} {summary[s]['faces']} ({summary[s]['groups']} groups)" for s in SPLITS)
    return f"{summary['faces']} faces in {summary['groups']} groups: {parts}"


if __name__ == "__main__":
    run_stage("split", main, outputs=[SPLIT_OUT, METRICS_OUT])
