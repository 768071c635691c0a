"""Stage detect_anime: anime faces + hysts' 28 points on every extracted frame.

Reads `data/frames/` and, for `backend: labels`, the labels table; writes `data/anime/faces.parquet` and
`metrics/detect.json` (docs/pipeline.md).
"""

from __future__ import annotations

from pathlib import Path

from face2anime.anime.detect.filters import FaceFilter
from face2anime.anime.detect.run import detect_frames, read_frame_index
from face2anime.io import write_json, write_table
from face2anime.runtime import seed_everything
from face2anime.settings import load_settings
from face2anime.stage import run_stage

FRAMES_DIR = Path("data/frames")
FACES_OUT = Path("data/anime/faces.parquet")
METRICS_OUT = Path("metrics/detect.json")


def main() -> str:
    params = load_settings("detect_anime")
    backend_name = params.backend
    flt = FaceFilter.from_params(params)
    index = read_frame_index(FRAMES_DIR)
    if backend_name == "labels":
        from face2anime.anime.detect.labels import LabelsBackend, read_labels

        backend = LabelsBackend(read_labels(params.labels_file), index)
        with_contour = backend.has_contour
    else:
        from face2anime.anime.detect.hysts import HystsBackend

        backend = HystsBackend.from_config(params)
        seed_everything(0)   # inference draws no random numbers; this selects deterministic kernels
        with_contour = False
    result = detect_frames(index, FRAMES_DIR, backend, flt, with_contour=with_contour)
    if backend_name == "hysts":
        result.metrics["face_detector"] = params.face_detector
    write_table(FACES_OUT, result.faces)
    write_json(METRICS_OUT, result.metrics)
    m = result.metrics
    rejected = ", ".join(f"{k} {v}" for k, v in m["rejected"].items() if v) or "none"
    extra = f"; labels unused {m['labels_unused']}" if "labels_unused" in m else ""
    unreadable = f"; unreadable frames {m['frames_unreadable']}" if m["frames_unreadable"] else ""
    return (f"{m['backend']}: {m['faces']} faces in {m['frames_with_faces']}/{m['frames']} frames "
            f"({m['frames_without_face']} without a face); rejected: {rejected}{extra}{unreadable}")


if __name__ == "__main__":
    run_stage("detect_anime", main, outputs=[FACES_OUT, METRICS_OUT])
