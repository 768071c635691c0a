"""Stage detect_anime: the hysts backend on random-weight models loaded through the project's own path,
the labels backend (happy path, bad tables, NaN points, frames without faces) and the filters."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from face2anime.anime.detect.faces import FACE_COLUMNS, contour_columns, faces_points
from face2anime.anime.detect.filters import REASONS, FaceFilter, new_counter
from face2anime.anime.detect.labels import LabelsBackend, read_labels
from face2anime.anime.detect.run import detect_frames, read_frame_index
from face2anime.errors import UserError
from face2anime.landmarks.schema import HYSTS28, table_columns

from _params import settings

ROOT = Path(__file__).resolve().parents[1]
OPEN = FaceFilter()  # every filter off


# ---------------------------------------------------------------- helpers
def template28() -> np.ndarray:
    """A plausible 28-point face in unit box coordinates (x right, y down), in hysts' order."""
    return np.array([
        [0.05, 0.45], [0.2, 0.8], [0.5, 0.97], [0.8, 0.8], [0.95, 0.45],          # contour
        [0.15, 0.3], [0.25, 0.27], [0.38, 0.3], [0.62, 0.3], [0.75, 0.27], [0.85, 0.3],  # brows
        [0.15, 0.45], [0.27, 0.38], [0.4, 0.45], [0.17, 0.55], [0.28, 0.58], [0.39, 0.55],  # left eye
        [0.6, 0.45], [0.73, 0.38], [0.85, 0.45], [0.61, 0.55], [0.72, 0.58], [0.83, 0.55],  # right eye
        [0.5, 0.65], [0.42, 0.78], [0.5, 0.76], [0.58, 0.78], [0.5, 0.82],                  # nose, mouth
    ])


def label_row(video: str, frame: int, box: tuple[float, float, float, float], shot: int = 0,
              character: str = "c000", hidden: tuple[int, ...] = ()) -> dict:
    x0, y0, x1, y1 = box
    pts = template28() * [x1 - x0, y1 - y0] + [x0, y0]
    row = {"video": video, "frame": frame, "shot": shot, "character": character,
           "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1}
    for i, (x, y) in enumerate(pts):
        row[f"p{i:02d}_x"], row[f"p{i:02d}_y"], row[f"p{i:02d}_v"] = x, y, 0 if i in hidden else 1
    contour = np.linspace(pts[0], pts[4], 17)   # any 17 points: they are only carried
    for i, (x, y) in enumerate(contour):
        row[f"c{i:02d}_x"], row[f"c{i:02d}_y"] = x, y
    return row


def frame_index(frames: list[int], video: str = "episode.mp4", scenes: list[int] | None = None,
                size: tuple[int, int] = (640, 360)) -> pd.DataFrame:
    stem = Path(video).stem
    return pd.DataFrame({
        "frame_id": [f"{stem}_{f:06d}" for f in frames], "video": video, "frame": frames,
        "time_s": [f / 24 for f in frames], "scene": scenes or [0] * len(frames),
        "width": size[0], "height": size[1], "path": [f"images/{stem}_{f:06d}.jpg" for f in frames]})


def write_frames(root: Path, index: pd.DataFrame, seed: int = 0) -> Path:
    """A data/frames folder: index.csv plus small JPEGs (a drawn face-like blob on noise)."""
    frames_dir = root / "data" / "frames"
    (frames_dir / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for rec in index.to_dict("records"):
        img = rng.integers(0, 255, (rec["height"], rec["width"], 3), dtype=np.uint8)
        cv2.ellipse(img, (rec["width"] // 2, rec["height"] // 2), (60, 80), 0, 0, 360, (200, 220, 250), -1)
        cv2.imwrite(str(frames_dir / rec["path"]), img)
    index.to_csv(frames_dir / "index.csv", index=False)
    return frames_dir


# ---------------------------------------------------------------- hysts backend, random weights
def save_random(cls, path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in cls().state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> dict[str, Path]:
    """hysts' YOLOv3 and HRNetV2 from the installed runtime with random weights, saved as safetensors."""
    import torch
    from anime_face_detector._face import YOLOv3FaceDetector
    from anime_face_detector._landmark import LandmarkModel

    torch.set_num_threads(1)   # 2 shared cores: one thread is several times faster under contention
    folder = tmp_path_factory.mktemp("hysts_weights")
    return {"yolov3": save_random(YOLOv3FaceDetector, folder / "yolov3.safetensors"),
            "hrnetv2": save_random(LandmarkModel, folder / "hrnetv2.safetensors")}


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FACE2ANIME_CACHE", str(cache))
    return cache


def check_faces_table(df: pd.DataFrame) -> None:
    assert list(df.columns)[: len(FACE_COLUMNS)] == FACE_COLUMNS
    points, scores = faces_points(df)
    assert points.shape == (len(df), HYSTS28.n, 2) and scores.shape == (len(df), HYSTS28.n)
    assert np.isfinite(points).all() and np.isfinite(scores).all()
    assert np.isfinite(df[["det_score", "lmk_score"]].to_numpy()).all()
    assert np.allclose(df["lmk_score"], scores.mean(axis=1))
    assert df["face_id"].is_unique


@pytest.mark.slow
def test_hysts_yolov3_runs_on_resolved_local_weights(random_weights, empty_cache, tmp_path):
    from face2anime.anime.detect.hysts import HystsBackend

    cfg = settings("detect_anime", **{"face_detector": "yolov3", "device": "auto",
                                   "detector_weights": str(random_weights["yolov3"]),
                                   "landmark_weights": str(random_weights["hrnetv2"])})
    backend = HystsBackend.from_config(cfg)
    assert backend.metrics()["device"] in ("cpu", "cuda:0")
    index = frame_index([0], scenes=[3], size=(256, 192))
    frames_dir = write_frames(tmp_path, index)
    flt = FaceFilter(max_faces=2)     # random weights: scores mean nothing, only cap the count
    result = detect_frames(index, frames_dir, backend, flt, progress=False)
    check_faces_table(result.faces)
    assert result.metrics["frames"] == 1 and result.metrics["backend"] == "hysts"
    assert result.metrics["faces"] == len(result.faces) <= 2
    if len(result.faces):
        assert (result.faces["shot"] == 3).all() and (result.faces["character"] == "").all()
        assert result.faces["face_id"].iloc[0] == "episode_000000_f0"

    # The landmark path on a given box, whatever the random detector found: points fall inside the
    # region the landmark model looked at (box x box_scale_factor x mmpose's 1.25 padding), give or take
    # the 3 heatmap cells (of 64) that sub-pixel decoding can shift an edge peak by.
    image = cv2.imread(str(frames_dir / index["path"][0]))
    rejected = new_counter()
    box = np.array([[70.0, 40.0, 190.0, 170.0]])
    faces = backend.faces_from_boxes(image, box, np.array([0.9]), shot=3, flt=OPEN, rejected=rejected)
    assert len(faces) == 1 and sum(rejected.values()) == 0
    face = faces[0]
    assert face.points.shape == (28, 2) and np.isfinite(face.points).all()
    assert np.array_equal(face.box, box[0]) and face.det_score == pytest.approx(0.9)
    none = backend.faces_from_boxes(image, np.zeros((0, 4)), np.zeros(0), shot=3, flt=OPEN, rejected=rejected)
    assert none == [] and sum(rejected.values()) == 0
    side = 1.1 * 1.25 * 131
    centre, half = np.array([130.0, 105.0]), side / 2 + 3 * side / 64
    assert (np.abs(face.points - centre) <= half).all()


@pytest.mark.slow
def test_hysts_stage_with_faster_rcnn_end_to_end(random_weights, empty_cache, tiny_project, load_stage, monkeypatch):
    """The stage script itself, in a scratch project: params -> resolver -> runtime -> filters -> table + metrics.

    Random detector weights find no face, and a table of 0 faces would pass any check on its rows: the loaded
    detector reports two known boxes instead (the landmark model stays the real one, random weights), and
    with max_faces 1 the table must hold exactly the larger one, with its frame, shot and 28 points."""
    from anime_face_detector._face import FasterRCNNFaceDetector

    root = tiny_project.root
    frcnn = save_random(FasterRCNNFaceDetector, root / "frcnn.safetensors")
    boxes = np.array([[40.0, 30.0, 150.0, 140.0, 0.9], [10.0, 10.0, 40.0, 40.0, 0.8]], np.float32)
    monkeypatch.setattr(FasterRCNNFaceDetector, "detect", lambda self, image: boxes.copy())
    stage = load_stage("detect_anime")
    index = frame_index([2], video="clip.mp4", scenes=[1], size=(200, 160))
    write_frames(root, index)
    tiny_project.set("detect_anime", backend="hysts", face_detector="faster-rcnn", device="cpu", threads=1,
                     detector_weights=str(frcnn), landmark_weights=str(random_weights["hrnetv2"]),
                     min_det_score=None, min_face_px=5, max_faces=1, min_lmk_score=None)
    monkeypatch.chdir(root)
    summary = stage.main()
    assert summary.startswith("hysts: 1 faces in 1/1 frames (0 without a face); rejected: max_faces 1"), summary
    df = pd.read_parquet(root / "data/anime/faces.parquet")
    metrics = json.loads((root / "metrics/detect.json").read_text())
    check_faces_table(df)
    assert metrics["face_detector"] == "faster-rcnn" and metrics["frames"] == 1
    assert metrics["faces"] == len(df) == 1 and metrics["frames_with_faces"] == 1
    assert metrics["rejected"] == {**dict.fromkeys(REASONS, 0), "max_faces": 1}
    face = df.iloc[0]
    assert (face["face_id"], face["frame_id"], face["shot"]) == ("clip_000002_f0", "clip_000002", 1)
    assert [face[c] for c in ("box_x0", "box_y0", "box_x1", "box_y1")] == [40.0, 30.0, 150.0, 140.0]
    assert face["det_score"] == pytest.approx(0.9)
    # the points come from the region the landmark model looked at around that box (see the YOLOv3 test)
    points, _ = faces_points(df)
    side = 1.1 * 1.25 * 111
    assert (np.abs(points[0] - [95.0, 85.0]) <= side / 2 + 3 * side / 64).all()


def test_hysts_weights_that_do_not_fit_are_one_line_errors(random_weights, empty_cache):
    from face2anime.anime.detect.hysts import load_detector

    cfg = settings("detect_anime", **{"face_detector": "yolov3", "device": "cpu",
                                   "detector_weights": str(random_weights["hrnetv2"]),
                                   "landmark_weights": str(random_weights["hrnetv2"])})
    with pytest.raises(UserError) as err:
        load_detector(cfg)
    assert "yolov3" in str(err.value) and "\n" not in str(err.value)


def test_hysts_offline_without_weights_names_file_and_source(empty_cache):
    from face2anime.anime.detect.hysts import resolve_weights

    with pytest.raises(UserError) as err:
        resolve_weights(settings("detect_anime", face_detector="yolov3"))
    msg = str(err.value)
    assert "model.safetensors" in msg
    assert "https://huggingface.co/hysts/anime-face-detector-yolov3" in msg
    assert str(empty_cache / "hysts-yolov3" / "model.safetensors") in msg
    assert "detect_anime.detector_weights" in msg and "\n" not in msg


def test_hysts_stage_offline_error_is_one_line_exit_1(empty_cache, tiny_project):
    tmp_path = tiny_project.root
    write_frames(tmp_path, frame_index([0], size=(64, 48)))
    tiny_project.set("detect_anime", backend="hysts", face_detector="faster-rcnn")
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "detect_anime.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "hysts-faster-rcnn (model.safetensors)" in lines[0]
    assert "huggingface.co/hysts/anime-face-detector-faster-rcnn" in lines[0]
    assert not (tmp_path / "data/anime/faces.parquet").exists()


def test_hysts_config_rejects_bad_values():
    with pytest.raises(UserError, match="face_detector"):
        settings("detect_anime", face_detector="retinanet")
    with pytest.raises(UserError, match="device"):
        settings("detect_anime", device="tpu")


# ---------------------------------------------------------------- labels backend
def labels_table() -> pd.DataFrame:
    rows = [
        label_row("episode.mp4", 0, (300, 100, 400, 220), shot=0, character="c001", hidden=(5, 6, 7)),
        label_row("episode.mp4", 0, (100, 80, 220, 230), shot=0, character="c002"),
        label_row("episode.mp4", 2, (200, 50, 330, 210), shot=1, character="c003"),
        label_row("episode.mp4", 9, (200, 50, 330, 210), shot=2, character="c004"),   # frame not extracted
    ]
    return pd.DataFrame(rows)


def test_labels_happy_path(tmp_path):
    path = tmp_path / "truth.csv"
    labels_table().to_csv(path, index=False)
    index = frame_index([0, 2, 4], scenes=[0, 1, 1])   # frame 4 has no label row: a frame without a face
    backend = LabelsBackend(read_labels(path), index)
    assert backend.has_contour
    result = detect_frames(index, tmp_path, backend, FaceFilter(min_face_px=40, max_faces=4, min_lmk_score=0.3),
                           with_contour=True, progress=False)
    df, m = result.faces, result.metrics
    check_faces_table(df)
    assert list(df.columns) == FACE_COLUMNS + contour_columns()
    assert list(df["face_id"]) == ["episode_000000_f0", "episode_000000_f1", "episode_000002_f0"]
    assert list(df["character"]) == ["c002", "c001", "c003"]   # left to right within a frame
    assert list(df["shot"]) == [0, 0, 1]
    assert (df["det_score"] == 1.0).all()
    first = df[df["character"] == "c001"].iloc[0]
    assert first["p05_s"] == 0 and first["p08_s"] == 1 and first["lmk_score"] == pytest.approx(25 / 28)
    truth = labels_table().iloc[0]
    cols = table_columns("p", 28) + table_columns("c", 17)
    assert np.allclose(first[cols].to_numpy(float), truth[cols].to_numpy(float))
    assert m == {**m, "backend": "labels", "frames": 3, "frames_with_faces": 2, "frames_without_face": 1,
                 "faces": 3, "labels_rows": 4, "labels_unused": 1, "skipped_faces": []}
    assert sum(m["rejected"].values()) == 0


def test_labels_missing_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "mine.csv"
    labels_table().drop(columns=["box_y1", "p05_x", "p27_y"]).to_csv(path, index=False)
    with pytest.raises(UserError) as err:
        read_labels(path)
    msg = str(err.value)
    assert "box_y1" in msg and "p05_x" in msg and "p27_y" in msg and "\n" not in msg
    with pytest.raises(UserError, match="not found"):
        read_labels(tmp_path / "absent.csv")


def test_labels_without_optional_columns(tmp_path):
    """No shot/character/visibility/contour: scene as shot, empty character, visibility 1, no c columns."""
    table = labels_table()
    table = table.drop(columns=["shot", "character"] + [f"p{i:02d}_v" for i in range(28)]
                       + table_columns("c", 17))
    table["video"] = "episode"   # no extension: still matches episode.mp4
    path = tmp_path / "mine.csv"
    table.to_csv(path, index=False)
    index = frame_index([0, 2], scenes=[5, 6])
    backend = LabelsBackend(read_labels(path), index)
    df = detect_frames(index, tmp_path, backend, OPEN, with_contour=backend.has_contour, progress=False).faces
    assert list(df.columns) == FACE_COLUMNS
    assert list(df["shot"]) == [5, 5, 6] and (df["character"] == "").all() and (df["lmk_score"] == 1).all()


def test_labels_partial_contour_is_an_error(tmp_path):
    path = tmp_path / "mine.csv"
    labels_table().drop(columns=["c16_x", "c16_y"]).to_csv(path, index=False)
    with pytest.raises(UserError, match="c16_x"):
        read_labels(path)


def test_labels_nan_points_are_counted_and_listed(tmp_path):
    table = labels_table()
    table.loc[1, "p12_y"] = np.nan
    table.loc[2, "box_x0"] = np.nan
    path = tmp_path / "truth.csv"
    table.to_csv(path, index=False)
    index = frame_index([0, 2])
    backend = LabelsBackend(read_labels(path), index)
    result = detect_frames(index, tmp_path, backend, OPEN, with_contour=True, progress=False)
    m = result.metrics
    assert m["faces"] == 1 and list(result.faces["character"]) == ["c001"]
    assert m["rejected"]["nan_points"] == 1 and m["rejected"]["nan_box"] == 1
    assert m["skipped_faces"] == [
        {"video": "episode.mp4", "frame": 0, "line": 3, "reason": "nan_points"},
        {"video": "episode.mp4", "frame": 2, "line": 4, "reason": "nan_box"}]
    assert m["frames_with_faces"] == 1 and m["frames_without_face"] == 1


def test_labels_scaled_to_downscaled_frames(tmp_path):
    table = labels_table().iloc[[2]].assign(width=640, height=360)
    path = tmp_path / "truth.csv"
    table.to_csv(path, index=False)
    index = frame_index([2], size=(320, 180))
    df = detect_frames(index, tmp_path, LabelsBackend(read_labels(path), index), OPEN,
                       with_contour=True, progress=False).faces
    assert df["box_x0"].iloc[0] == pytest.approx((200 + 0.5) * 0.5 - 0.5)
    assert df["p02_y"].iloc[0] == pytest.approx((table["p02_y"].iloc[0] + 0.5) * 0.5 - 0.5)


# ---------------------------------------------------------------- filters
def test_filters_count_every_reason():
    boxes = np.array([[0, 0, 50, 30], [0, 0, 100, 100], [0, 0, 80, 80], [0, 0, 60, 60], [0, 0, 90, 90.0]])
    scores = np.array([0.9, 0.2, 0.9, 0.9, 0.9])
    rejected = new_counter()
    flt = FaceFilter(min_det_score=0.5, min_face_px=40, max_faces=2, min_lmk_score=0.5)
    keep = flt.select_boxes(boxes, scores, rejected)
    assert keep == [4, 2]     # largest first among those passing score and size
    assert flt.select_boxes(np.zeros((0, 4)), np.zeros(0), rejected) == []
    assert rejected == Counter({**dict.fromkeys(REASONS, 0), "det_score": 1, "small_face": 1, "max_faces": 1})
    assert flt.select_landmarks(["a", "b"], [0.6, 0.4], rejected) == ["a"]
    assert rejected["lmk_score"] == 1


def test_filters_from_params():
    flt = FaceFilter.from_params(settings("detect_anime", min_det_score=0.5, min_face_px=None, max_faces=0,
                                          min_lmk_score=0.3))
    assert flt == FaceFilter(min_det_score=0.5, min_face_px=None, max_faces=None, min_lmk_score=0.3)
    with pytest.raises(UserError, match="max_faces"):
        settings("detect_anime", max_faces=-1)
    with pytest.raises(UserError, match="min_det_score"):
        settings("detect_anime", min_det_score="high")


def test_labels_stage_is_deterministic(tiny_project, load_stage, monkeypatch):
    tmp_path = tiny_project.root
    stage = load_stage("detect_anime")
    index = frame_index([0, 2, 4])
    frames_dir = tmp_path / "data" / "frames"
    frames_dir.mkdir(parents=True)
    index.to_csv(frames_dir / "index.csv", index=False)
    labels_table().to_csv(tmp_path / "truth.csv", index=False)
    tiny_project.set("detect_anime", backend="labels", labels_file="truth.csv", min_face_px=40, max_faces=4,
                     min_det_score=None, min_lmk_score=None)
    monkeypatch.chdir(tmp_path)
    stage.main()
    first = (tmp_path / "data/anime/faces.parquet").read_bytes()
    summary = stage.main()
    assert (tmp_path / "data/anime/faces.parquet").read_bytes() == first
    assert "3 faces in 2/3 frames" in summary and "labels unused 1" in summary
    assert len(read_frame_index(frames_dir)) == 3
