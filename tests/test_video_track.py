"""Video conversion's tracking: the face tracker (re-detection at a cut, identities, fewer detections), the
One-Euro smoother (a still signal stays still, a step is followed within the set lag), the warping-error measure
(0 for a pure translation warped back, more with flicker, on hand-made frames) and the tracked video path end to
end on a short test clip (frame count, size, rate, audio). Generators are random weights in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face2anime.convert.faces import FaceFinder
from face2anime.convert.model import read_model
from face2anime.convert.run import convert_paths
from face2anime.convert.settings import load_settings
from face2anime.convert.track import FaceTracker, FlowBlend, OneEuro
from face2anime.convert.video import decoded_facts, has_audio
from face2anime.gan.models import build_generator, generator_record, save_generator
from face2anime.metrics.temporal import occlusion_mask, pair_flows, warp_back, warping_error
from face2anime.params import AnimeGeneratorParams
from face2anime.photos.clip import MotionClipSpec, make_clip, write_clip
from face2anime.settings import load_params

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
SMALL_CLIP = MotionClipSpec(width=480, height=360).scaled(0.25)   # every segment, a few frames each


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random animegan folder with the framing record train_gan writes."""
    f, p = load_params("framing", PARAMS), load_params("photo_landmarks", PARAMS)
    arch = AnimeGeneratorParams(width=4, blocks=1, expansion=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "g"
    save_generator(path, build_generator(arch, 112), {
        "generator": generator_record("animegan", arch), "variant": "test-random", "image_size": 112,
        "input_range": [-1, 1], "channels": "RGB", "framing": {"margin": f["margin"], "y_shift": f["y_shift"]},
        "photo_landmarks": {k: p[k] for k in ("mapping", "detector", "upsample", "det_threshold", "max_side")}})
    return path


@pytest.fixture(scope="module")
def clip():
    return make_clip(SMALL_CLIP)


def _tracker(model_dir: Path, fps: float, **overrides) -> FaceTracker:
    settings = load_settings(PARAMS, {"device": "cpu", **overrides})
    return FaceTracker(FaceFinder(read_model(model_dir), settings), settings, fps)


# ---------------------------------------------------------------- tracker
def test_tracker_redetects_after_a_cut_and_keeps_identities(model_dir, clip):
    tracker = _tracker(model_dir, clip.fps, detect_every=1000)   # only the first frame, cuts and lost faces detect
    out = [tracker.step(f) for f in clip.frames[:clip.segment("cut").stop]]
    assert tracker.cuts == 1
    before, after = range(clip.cut), clip.segment("cut")
    assert all(len(out[t]) == 1 for t in before) and all(len(out[t]) == 1 for t in after), [len(o) for o in out]
    assert {out[t][0].track_id for t in before} == {0}              # one identity through pan, zoom and roll
    assert {out[t][0].track_id for t in after} == {1}               # the other photo's face: a new identity
    assert out[clip.cut][0].detected and not out[clip.cut + 1][0].detected
    # the face after the cut is where a fresh detection puts it (the old face's box was not carried over)
    fresh = tracker.finder.find(clip.frames[clip.cut])[0].square
    assert np.abs(out[clip.cut][0].face.square - fresh).max() < 1e-6
    assert tracker.detections < len(out) / 2                        # tracking, not detecting, in between


def test_tracker_finds_the_face_that_enters_and_duplicates_none(model_dir, clip):
    tracker = _tracker(model_dir, clip.fps, detect_every=2)
    out = [tracker.step(f) for f in clip.frames]
    counts = [len(o) for o in out]
    entering = clip.starts["enter"]    # while it slides in, the second face may be found before it is whole
    assert counts[:entering] == clip.faces[:entering] and max(counts) == 2 and counts[-1] == 2, counts
    ids = [o.track_id for o in out[-1]]
    assert len(set(ids)) == 2


def test_tracker_redetects_when_the_tracked_patch_changes(model_dir, clip):
    """A face replaced by another without a histogram jump (no cut): the patch correlation drops, the
    detector runs again."""
    tracker = _tracker(model_dir, clip.fps, detect_every=1000, scene_cut=1.0)
    frames = clip.frames[:3] + [np.full_like(clip.frames[0], 128)] * 2
    out = [tracker.step(f) for f in frames]
    assert [len(o) for o in out] == [1, 1, 1, 0, 0] and tracker.detections >= 2 and tracker.cuts == 0


# ---------------------------------------------------------------- smoother
def test_one_euro_leaves_a_still_signal_still_and_damps_noise():
    f = OneEuro(24.0, 1.0, 0.05, 1.0)
    still = np.array([[10.0, 20.0], [30.5, 40.25]])
    assert all(np.array_equal(f(still), still) for _ in range(20))
    noisy = 100.0 + np.random.default_rng(0).normal(0, 1.0, 200)
    g = OneEuro(24.0, 1.0, 0.05, 1.0)
    smooth = np.array([g(np.array([v]))[0] for v in noisy])
    assert np.abs(np.diff(smooth[20:])).mean() < 0.3 * np.abs(np.diff(noisy[20:])).mean()


@pytest.mark.parametrize("beta", [0.0, 0.05, 1.0])
def test_one_euro_follows_a_step_within_its_lag(beta):
    f = OneEuro(24.0, 1.0, beta, 1.0)
    lag = f.settle_frames(0.1)
    assert 1 < lag < 24
    for _ in range(10):
        f(np.array([0.0]))
    out = [f(np.array([50.0]))[0] for _ in range(lag)]
    assert out[0] < 50.0                       # it does smooth: not there at once
    assert abs(out[-1] - 50.0) <= 5.0          # within 10 % of the step after its set lag
    assert np.all(np.diff(out) >= 0)           # no overshoot on the way


# ---------------------------------------------------------------- warping error
def _texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)


def test_warping_error_is_zero_for_a_translation_warped_back_with_its_flow():
    a = _texture()
    b = _shift(a, 3, 2)                         # b(p + (3, 2)) = a(p)
    h, w = a.shape[:2]
    forward = np.zeros((h, w, 2), np.float32)
    forward[..., 0], forward[..., 1] = 3, 2
    mask = occlusion_mask(forward, -forward)
    assert not mask[:, -3:].any() and mask[10:-10, 10:-10].all()   # pixels leaving the frame do not count
    assert warping_error([a, b], flows=[(forward, mask)]) == 0.0
    flicker = np.clip(b.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    assert warping_error([a, flicker], flows=[(forward, mask)]) == pytest.approx(12.0, abs=0.5)


def test_warping_error_with_dis_flow_separates_stable_from_flickering():
    frames = [_shift(_texture(), 2 * k, k) for k in range(4)]
    flows = pair_flows(frames)
    stable = warping_error(frames, flows=flows)
    flicker = [np.clip(f.astype(np.int16) + (10 if k % 2 else 0), 0, 255).astype(np.uint8)
               for k, f in enumerate(frames)]
    assert stable < 0.5
    assert warping_error(flicker, flows=flows) > 8.0
    assert warping_error(frames, inputs=frames, skip=[0, 1, 2]) == 0.0        # every pair skipped: nothing counts
    np.testing.assert_array_equal(warp_back(frames[0], np.zeros((*frames[0].shape[:2], 2), np.float32)), frames[0])


def test_flow_blend_leaves_pixels_outside_the_faces_alone():
    a, b = _texture(seed=1), _shift(_texture(seed=1), 1, 0)
    blend = FlowBlend(0.5, 0.3)
    out_a = a.copy()
    out_a[30:60, 40:80] = 200
    out_b = b.copy()
    out_b[30:60, 41:81] = 120
    blend(a, out_a)
    mixed = blend(b, out_b)
    outside = np.all(out_b == b, axis=-1)
    assert np.array_equal(mixed[outside], b[outside])                # untouched outside the pasted region
    assert 130 < mixed[40:50, 55:65].mean() < 190                    # the face mixed with the previous one


# ---------------------------------------------------------------- end to end
@pytest.mark.slow
@pytest.mark.parametrize("tracking", [True, False])
def test_tracked_video_keeps_frames_size_rate_and_audio(tmp_path, model_dir, clip, tracking):
    src = write_clip(clip, tmp_path / "in" / "clip.mp4")
    report = convert_paths([src], tmp_path / "out", model_dir, params=PARAMS, progress=False, device="cpu",
                           video_tracking=tracking)
    (o,) = report.outcomes
    assert o.status == "converted" and o.frames == len(clip.frames), report.listing()
    assert o.faces >= len(clip.frames)
    assert decoded_facts(tmp_path / "out" / "clip.mp4") == decoded_facts(src)
    if has_audio(src):
        assert o.note == "audio copied" and has_audio(tmp_path / "out" / "clip.mp4")
