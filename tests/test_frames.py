"""Frame extraction on small generated videos: sampling, dedupe, cuts, size cap, bad videos, the stage CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from face2anime.anime.frames import INDEX_COLUMNS, extract_frames, is_sampled, thumb_phash
from face2anime.anime.videos import list_videos
from face2anime.errors import UserError
from face2anime.settings import load_params

from _params import PARAMS, settings

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS = 160, 96, 24.0
SHOT_COLOURS = [(200, 60, 30), (30, 200, 60), (60, 30, 200), (220, 220, 40)]


def moving_frame(i: int, background: tuple[int, int, int] = (200, 60, 30), size: tuple[int, int] = (W, H)) -> np.ndarray:
    """A frame whose content moves every frame: a disc sliding over a gradient, plus a frame-number bar."""
    w, h = size
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:] = background
    frame[:, :, 1] = np.clip(frame[:, :, 1].astype(int) + np.linspace(0, 50, w, dtype=int)[None, :], 0, 255)
    cv2.circle(frame, (w // 5 + (i * 4) % (w // 2), h // 2), h // 5, (255, 255, 255), -1)
    cv2.rectangle(frame, (0, h - h // 8), ((i * 7) % w, h - 1), (0, 0, 0), -1)
    return frame


# The frame settings these tests were written against (step_s 1/12 s: every second frame at 24 fps).
FRAME_TEST_PARAMS = dict(step_s=0.0833, dedupe_hamming=0, hash_size=16, scene_threshold=30.0, keep_scene_starts=False,
                         max_side=1280, jpeg_quality=95, workers=2)


def frame_config(**kw):
    return settings("extract_frames", **{**FRAME_TEST_PARAMS, **kw})


def write_video(path: Path, frames: list[np.ndarray], fps: float = FPS, fourcc: str = "mp4v") -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def run(videos: list[Path], out: Path, **cfg) -> tuple[pd.DataFrame, dict]:
    result = extract_frames(videos, out, frame_config(**cfg), show_progress=False)
    return result.index, result.metrics


def test_time_grid_sampling():
    sampled = [i for i in range(720) if is_sampled(i, 24.0, 0.0833)]
    assert sampled == list(range(0, 720, 2))
    assert all(is_sampled(i, 24.0, 0.0) for i in range(50))
    assert [i for i in range(100) if is_sampled(i, 25.0, 1.0)] == [0, 25, 50, 75]
    # 29.97 fps at 0.5 s: 3000 frames = 100.1 s -> 201 picks, 14 or 15 frames apart (never drifting)
    picks = [i for i in range(3000) if is_sampled(i, 29.97, 0.5)]
    assert set(np.diff(picks)) <= {14, 15} and len(picks) == 201


@pytest.mark.parametrize("hash_size", [8, 16])
def test_phash_matches_imagehash(hash_size):
    import imagehash

    rng = np.random.default_rng(hash_size)
    side = 4 * hash_size
    for k in range(60):
        noise = (rng.random((side, side)) * 255).astype(np.uint8)
        thumb = cv2.GaussianBlur(noise, (0, 0), 0.3 + k / 10)
        assert thumb_phash(thumb, hash_size) == imagehash.phash(Image.fromarray(thumb), hash_size=hash_size)
    # a larger thumbnail is area-downscaled first: close to imagehash's own (Lanczos) downscale
    big = cv2.GaussianBlur((rng.random((64, 64)) * 255).astype(np.uint8), (0, 0), 3)
    if hash_size == 8:
        assert thumb_phash(big, 8) - imagehash.phash(Image.fromarray(big), hash_size=8) <= 6


def test_counts_index_and_images(tmp_path):
    video = write_video(tmp_path / "clip.mp4", [moving_frame(i) for i in range(48)])
    index, m = run([video], tmp_path / "out", step_s=2 / 24)
    assert (m["frames_decoded"], m["frames_sampled"], m["frames_kept"], m["dropped_duplicates"]) == (48, 24, 24, 0)
    assert m["videos"] == 1 and m["videos_failed"] == 0 and m["failed_videos"] == []
    assert list(index.columns) == INDEX_COLUMNS
    assert index["frame"].tolist() == list(range(0, 48, 2))
    assert index["frame_id"].iloc[3] == "clip_000006"
    assert index["time_s"].iloc[3] == pytest.approx(6 / 24)
    assert set(index["video"]) == {"clip.mp4"}
    cap = cv2.VideoCapture(str(video))
    decoded = [cap.read()[1] for _ in range(48)]
    for row in index.itertuples():
        image = cv2.imread(str(tmp_path / "out" / row.path))
        assert image is not None and image.shape[:2] == (row.height, row.width) == (H, W)
        # each JPEG shows its own frame (no buffer reused across threads), up to JPEG loss
        errors = [np.abs(image.astype(int) - d).mean() for d in decoded]
        assert int(np.argmin(errors)) == row.frame and errors[row.frame] < 3
    assert len(list((tmp_path / "out" / "images").iterdir())) == 24


def test_repeated_frames_are_dropped_moving_ones_kept(tmp_path):
    # 12 distinct poses, each held for 4 frames (a static shot), then 12 frames with motion every frame
    frames = [moving_frame(i // 4) for i in range(48)] + [moving_frame(100 + i) for i in range(12)]
    video = write_video(tmp_path / "held.mp4", frames)
    # mp4v noise flips 0-2 of the 256 hash bits between copies of a held picture; the poses differ by > 30
    index, m = run([video], tmp_path / "out", step_s=0.0, dedupe_hamming=2)
    assert m["frames_sampled"] == 60
    held = index[index["frame"] < 48]["frame"].tolist()
    assert held == list(range(0, 48, 4)), "one frame per held pose"
    assert (index["frame"] >= 48).sum() == 12, "every moving frame kept"
    assert m["dropped_duplicates"] == 36
    _, m_off = run([video], tmp_path / "off", step_s=0.0, dedupe_hamming=-1)
    assert m_off["frames_kept"] == 60 and m_off["dropped_duplicates"] == 0


def test_scene_index_increments_at_cuts(tmp_path):
    frames = [moving_frame(i, SHOT_COLOURS[i // 10]) for i in range(40)]
    video = write_video(tmp_path / "cuts.mp4", frames)
    index, m = run([video], tmp_path / "out", step_s=0.0)
    assert m["scenes"] == 4
    assert index.set_index("frame")["scene"].to_dict() == {i: i // 10 for i in range(40)}


def test_scene_starts_are_kept_off_the_grid(tmp_path):
    frames = [moving_frame(i, SHOT_COLOURS[min(i // 13, 3)]) for i in range(48)]
    video = write_video(tmp_path / "cuts.mp4", frames)
    index, _ = run([video], tmp_path / "grid", step_s=1.0)
    assert index["frame"].tolist() == [0, 24]
    assert index["scene"].tolist() == [0, 1], "the cut at 13 is seen between the sampled frames 0 and 24"
    index, m = run([video], tmp_path / "starts", step_s=1.0, keep_scene_starts=True)
    assert index["frame"].tolist() == [0, 13, 24, 26, 39]
    assert index["scene"].tolist() == [0, 1, 1, 2, 3]
    assert m["frames_sampled"] == 5


def test_size_cap_downscales_large_frames(tmp_path):
    frames = [moving_frame(i, size=(640, 360)) for i in range(6)]
    video = write_video(tmp_path / "big.mp4", frames)
    index, _ = run([video], tmp_path / "out", step_s=0.0, max_side=320)
    assert set(zip(index["width"], index["height"])) == {(320, 180)}
    image = cv2.imread(str(tmp_path / "out" / index["path"].iloc[0]))
    assert image.shape == (180, 320, 3)
    index, _ = run([video], tmp_path / "nocap", step_s=0.0, max_side=0)
    assert set(zip(index["width"], index["height"])) == {(640, 360)}


def test_bad_videos_are_counted_named_and_others_go_on(tmp_path):
    good_a = write_video(tmp_path / "a_good.mp4", [moving_frame(i) for i in range(24)])
    good_b = write_video(tmp_path / "d_good.avi", [moving_frame(i) for i in range(24)], fourcc="MJPG")
    noise = tmp_path / "b_noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    whole = write_video(tmp_path / "whole.mp4", [moving_frame(i) for i in range(48)]).read_bytes()
    (tmp_path / "c_cut.mp4").write_bytes(whole[: len(whole) * 6 // 10])
    whole_avi = write_video(tmp_path / "whole.avi", [moving_frame(i) for i in range(48)], fourcc="MJPG").read_bytes()
    (tmp_path / "e_cut.avi").write_bytes(whole_avi[: len(whole_avi) // 2])
    videos = [good_a, noise, tmp_path / "c_cut.mp4", good_b, tmp_path / "e_cut.avi"]
    index, m = run(videos, tmp_path / "out", step_s=0.0)
    assert m["videos"] == 5 and m["videos_failed"] == 3
    assert m["failed_videos"] == ["b_noise.mp4", "c_cut.mp4", "e_cut.avi"]
    assert "truncated" in m["failure_reasons"]["e_cut.avi"]
    assert sorted(set(index["video"])) == ["a_good.mp4", "d_good.avi"]
    assert m["frames_decoded"] == 48 and m["frames_kept"] == len(index)
    written = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert written == sorted(Path(p).name for p in index["path"]), "no image left from a failed video"


def test_no_decodable_video_is_a_user_error(tmp_path):
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(b"\x00\x01not a video" * 100)
    with pytest.raises(UserError, match="no decodable video"):
        run([noise], tmp_path / "out")


def test_listing_empty_folder_and_other_files(tmp_path):
    with pytest.raises(UserError, match="no video files"):
        list_videos(tmp_path)
    with pytest.raises(UserError, match="not found"):
        list_videos(tmp_path / "missing")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    write_video(tmp_path / "ep1.mkv", [moving_frame(i) for i in range(3)])
    videos, others = list_videos(tmp_path)
    assert [v.name for v in videos] == ["ep1.mkv"] and others == ["notes.txt"]
    write_video(tmp_path / "ep1.mp4", [moving_frame(i) for i in range(3)])
    with pytest.raises(UserError, match="share the name stem"):
        list_videos(tmp_path)


@pytest.mark.parametrize("keep_scene_starts", [False, True])
def test_same_input_same_bytes_whatever_the_threading(tmp_path, keep_scene_starts):
    frames = [moving_frame(i // 4, SHOT_COLOURS[i // 12]) for i in range(44)]  # poses held for 4 frames
    video = write_video(tmp_path / "clip.mp4", frames)
    outputs = []
    for k, (workers, offload) in enumerate([(3, True), (1, False), (2, True)]):
        cfg = frame_config(step_s=2 / 24, workers=workers, keep_scene_starts=keep_scene_starts, dedupe_hamming=2)
        result = extract_frames([video], tmp_path / str(k), cfg, show_progress=False, offload=offload)
        outputs.append((result.index, result.metrics))
    assert outputs[0][1]["scenes"] == 4 and outputs[0][1]["dropped_duplicates"] > 0
    for index, metrics in outputs[1:]:
        pd.testing.assert_frame_equal(index, outputs[0][0])
        assert metrics == outputs[0][1]
        for rel in index["path"]:
            assert (tmp_path / "0" / rel).read_bytes() == (tmp_path / "1" / rel).read_bytes()


def test_bad_params_are_user_errors():
    with pytest.raises(UserError, match="jpeg_quality"):
        settings("extract_frames", jpeg_quality=0)
    with pytest.raises(UserError, match="step_s"):
        settings("extract_frames", step_s=-1)
    with pytest.raises(UserError, match="keep_scene_starts = 'yes': must be true or false"):
        settings("extract_frames", keep_scene_starts="yes")
    with pytest.raises(UserError, match="hash_size = 'x': must be an integer"):
        settings("extract_frames", hash_size="x")
    cfg = settings("extract_frames", step_s=1, scene_threshold=20)
    assert cfg.step_s == 1.0 and isinstance(cfg.step_s, float) and cfg.scene_threshold == 20.0


def _stage(project: Path, params: dict) -> subprocess.CompletedProcess:
    section = {**load_params("extract_frames", PARAMS), **params}   # the repository's values, then the test's
    (project / "params.yaml").write_text(yaml.safe_dump({"extract_frames": section}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(ROOT / "stages" / "extract_frames.py")], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def test_stage_writes_outputs_and_fails_cleanly(tmp_path):
    videos = tmp_path / "data" / "raw" / "videos"
    videos.mkdir(parents=True)
    (videos / "README.md").write_text("put videos here")
    params = {"source": "videos", "videos_dir": "data/raw/videos", "step_s": 0.0}
    proc = _stage(tmp_path, params)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "no video files in data/raw/videos/" in proc.stderr
    assert not (tmp_path / "data" / "frames").exists()

    write_video(videos / "ep.mp4", [moving_frame(i) for i in range(10)])
    (videos / "broken.mp4").write_bytes(b"junk" * 1000)
    proc = _stage(tmp_path, params)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("extract_frames: 10 frames kept") and "failed: broken.mp4" in proc.stdout
    index = pd.read_csv(tmp_path / "data" / "frames" / "index.csv")
    assert len(index) == 10 and list(index.columns) == INDEX_COLUMNS
    metrics = json.loads((tmp_path / "metrics" / "frames.json").read_text())
    assert metrics["failed_videos"] == ["broken.mp4"] and metrics["frames_kept"] == 10
    sheet = cv2.imread(str(tmp_path / "reports" / "frames_scenes.png"))
    assert sheet is not None and sheet.shape[1] >= 192, "scene sheet written"
    leftovers = [p.name for p in (tmp_path / "data").iterdir() if p.name.startswith(".")]
    assert leftovers == [], "no temporary directory left behind"

    proc = _stage(tmp_path, {**params, "source": "demo", "demo_video": "data/demo/episode.mp4"})
    assert proc.returncode == 1 and "make_demo" in proc.stderr
    assert len(pd.read_csv(tmp_path / "data" / "frames" / "index.csv")) == 10, "old outputs untouched"
