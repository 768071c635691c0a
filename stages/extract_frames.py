"""Stage extract_frames: sample frames from the videos (or the demo episode), drop near-duplicates.

Writes `data/frames/` (`images/*.jpg`, `index.csv`) as one atomic directory, `metrics/frames.json`
(docs/pipeline.md) and `reports/frames_scenes.png` (first kept frame of every scene). A video that
cannot be decoded is counted and named; the others go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from face2anime.cli import run_stage
from face2anime.data.frame_sheet import scene_sheet
from face2anime.data.frames import FrameConfig, extract_frames
from face2anime.data.videos import list_videos
from face2anime.errors import UserError
from face2anime.io import atomic_path, write_image, write_json, write_table
from face2anime.params import load_params

FRAMES_OUT = Path("data/frames")
METRICS_OUT = Path("metrics/frames.json")
SHEET_OUT = Path("reports/frames_scenes.png")
SOURCES = ("demo", "videos")


def source_videos(params: dict[str, Any]) -> tuple[list[Path], list[str]]:
    """The videos to extract and the names of non-video files found next to them."""
    source = params.get("source", "demo")
    if source == "demo":
        demo = Path(params.get("demo_video", "data/demo/episode.mp4"))
        if not demo.is_file():
            raise UserError(f"{demo} not found: run `dvc repro make_demo`, or set extract_frames.source: videos")
        return [demo], []
    if source == "videos":
        return list_videos(params.get("videos_dir", "data/raw/videos"))
    raise UserError(f"extract_frames.source must be one of {', '.join(SOURCES)}, got {source!r}")


def main() -> str:
    params = load_params("extract_frames")
    cfg = FrameConfig.from_params(params)
    try:
        sheet_tiles = int(params.get("sheet_scenes", 48))
    except (TypeError, ValueError):
        raise UserError(f"extract_frames.sheet_scenes must be an integer, got {params.get('sheet_scenes')!r}") from None
    videos, ignored = source_videos(params)
    with atomic_path(FRAMES_OUT, is_dir=True) as tmp:
        result = extract_frames(videos, tmp, cfg)
        write_table(tmp / "index.csv", result.index)
    m = {**result.metrics, "ignored_files": ignored}
    write_json(METRICS_OUT, m)
    sheet = scene_sheet(result.index, FRAMES_OUT, max_tiles=sheet_tiles)
    if sheet is not None:
        write_image(SHEET_OUT, sheet)
    failed = ", ".join(m["failed_videos"]) or "none"
    skipped = f"; not videos, ignored: {', '.join(ignored)}" if ignored else ""
    return (f"{m['frames_kept']} frames kept of {m['frames_sampled']} sampled ({m['frames_decoded']} decoded, "
            f"{m['dropped_duplicates']} duplicates dropped, {m['scenes']} scenes) from "
            f"{m['videos'] - m['videos_failed']}/{m['videos']} videos; failed: {failed}{skipped}")


if __name__ == "__main__":
    run_stage("extract_frames", main, outputs=[FRAMES_OUT, METRICS_OUT, SHEET_OUT])
