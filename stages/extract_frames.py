"""Stage extract_frames: sample frames from the videos (or the demo episode), drop near-duplicates.

Writes `data/frames/` (`images/*.jpg`, `index.csv`) as one atomic directory, `metrics/frames.json`
(docs/pipeline.md) and `reports/frames_scenes.png` (first kept frame of every scene). A video that
cannot be decoded is counted and named; the others go on.
"""

from __future__ import annotations

from pathlib import Path

from face2anime.anime.frame_sheet import scene_sheet
from face2anime.anime.frames import extract_frames
from face2anime.anime.videos import list_videos
from face2anime.errors import UserError
from face2anime.io import atomic_path, write_image, write_json, write_table
from face2anime.params import ExtractFramesParams
from face2anime.settings import load_settings
from face2anime.stage import run_stage

FRAMES_OUT = Path("data/frames")
METRICS_OUT = Path("metrics/frames.json")
SHEET_OUT = Path("reports/frames_scenes.png")


def source_videos(params: ExtractFramesParams) -> tuple[list[Path], list[str]]:
    """The videos to extract and the names of non-video files found next to them."""
    if params.source == "demo":
        demo = Path(params.demo_video)
        if not demo.is_file():
            raise UserError(f"{demo} not found: run `dvc repro make_demo`, or set extract_frames.source: videos")
        return [demo], []
    return list_videos(params.videos_dir)


def main() -> str:
    cfg = load_settings("extract_frames")
    sheet_tiles = cfg.sheet_scenes
    videos, ignored = source_videos(cfg)
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
