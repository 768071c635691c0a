"""Photo landmarks: loading of awkward files, dlib face policy, exact view transforms, flip symmetry, the two
stages end to end (counted skips, split, lid shift, determinism, targets independent of the anime crops
unless auto) and accuracy against HELEN's human annotations."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from face2anime.errors import UserError
from face2anime.landmarks.dlib68 import Detection, DlibLandmarker, NoFace, choose_face
from face2anime.landmarks.framing import Framing, crop_image
from face2anime.landmarks.schema import FACE40, FACE40_LOWER_LIDS, IBUG68, dlib_to_face40, flip_points
from face2anime.photos.crops import SIZE, auto_lid_shift, crop_views, eye_opening
from face2anime.photos.files import PhotoSkip, demo_photos, list_photos, load_photo
from face2anime.photos.split import split_by_photo
from face2anime.photos.views import Jitter, View, make_views, render_view, view_matrix, view_points

ROOT = Path(__file__).resolve().parents[1]
HELEN = ROOT.parent / "shared" / "data" / "photos68_helen_test"

JITTER = Jitter(scale=0.05, shift=0.03, angle=6.0, mirror_prob=0.5, brightness=0.08, contrast=0.1, saturation=0.15)


@pytest.fixture(scope="module")
def landmarker() -> DlibLandmarker:
    return DlibLandmarker()


@pytest.fixture(scope="module")
def demo() -> dict[str, np.ndarray]:
    return {p.photo_id: load_photo(p.path, 0) for p in demo_photos()}


def _outer_corners(points68: np.ndarray) -> float:
    return float(np.linalg.norm(points68[36] - points68[45]))


# ---------------------------------------------------------------- loading
def test_demo_photos_are_found_in_installed_packages():
    photos = demo_photos()
    assert {p.photo_id for p in photos} == {"grace_hopper", "astronaut"}
    assert all(p.path.is_file() and ":" in p.label for p in photos)  # portable label, not a machine path


def test_awkward_image_modes_become_rgb8(tmp_path, demo):
    face = demo["grace_hopper"]
    rgba = np.dstack([face, np.full(face.shape[:2], 255, np.uint8)])
    rgba[:50, :50, 3] = 0  # transparent corner -> white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = load_photo(tmp_path / "rgba.png", 0)
    assert out.shape == face.shape and out.dtype == np.uint8
    assert (out[:50, :50] == 255).all() and np.array_equal(out[100:, 100:], face[100:, 100:])

    gray16 = (cv2.cvtColor(face, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    out = load_photo(tmp_path / "gray16.png", 0)
    assert out.shape == face.shape and np.array_equal(out[..., 0], (gray16 // 257).astype(np.uint8))

    rgb16 = face[..., ::-1].astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16)
    assert np.abs(load_photo(tmp_path / "rgb16.png", 0).astype(int) - face).max() <= 1

    Image.fromarray(face).convert("L").save(tmp_path / "gray.png")
    out = load_photo(tmp_path / "gray.png", 0)
    assert out.shape == face.shape and (out[..., 0] == out[..., 2]).all()

    Image.fromarray(face).convert("P").save(tmp_path / "palette.png")
    assert load_photo(tmp_path / "palette.png", 0).shape == face.shape


def test_bad_files_are_skipped_with_a_reason(tmp_path, demo):
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    (tmp_path / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(demo["grace_hopper"]).save(buf, format="JPEG", quality=90)
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    reasons = {}
    for name in ("notes.jpg", "empty.png", "cut.jpg"):
        with pytest.raises(PhotoSkip) as err:
            load_photo(tmp_path / name, 0)
        reasons[name] = err.value.reason
    assert reasons == {"notes.jpg": "not an image", "empty.png": "empty file", "cut.jpg": "truncated"}


def test_exif_orientation_is_honoured(tmp_path, demo, landmarker):
    face = demo["grace_hopper"]
    stored = np.ascontiguousarray(np.rot90(face, k=1))  # pixels stored rotated 90 deg counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: rotate 90 deg clockwise to display
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    loaded = load_photo(tmp_path / "rotated.jpg", 0)
    assert loaded.shape == face.shape
    assert np.abs(loaded.astype(float) - face).mean() < 4.0  # upright again (JPEG noise only)
    ref = landmarker.find_face(face).points68
    got = landmarker.find_face(loaded).points68
    assert np.linalg.norm(got - ref, axis=1).mean() < 0.03 * _outer_corners(ref)


# ---------------------------------------------------------------- dlib: policy, size cap, flips
def test_face_policy():
    small, big = Detection((0, 0, 50, 50), 2.0), Detection((100, 0, 200, 100), 0.5)
    assert choose_face([small, big], "largest") == big
    assert choose_face([small, big], "best") == small
    with pytest.raises(NoFace) as err:
        choose_face([small, big], "skip_multiple")
    assert err.value.reason == "several faces" and err.value.n_faces == 2
    with pytest.raises(NoFace, match="no face"):
        choose_face([], "largest")
    with pytest.raises(UserError):
        choose_face([small], "first")


def test_several_faces_and_no_face(demo, landmarker):
    a = cv2.resize(demo["astronaut"][40:220, 130:310], (200, 200))   # smaller face
    b = demo["grace_hopper"][100:400, 120:420]                        # bigger face
    both = np.zeros((300, 520, 3), np.uint8)
    both[50:250, :200], both[:, 220:] = a, b
    res = landmarker.find_face(both)
    assert res.n_faces == 2 and res.points68[:, 0].min() > 220  # the largest (right) face kept
    strict = DlibLandmarker(policy="skip_multiple")
    with pytest.raises(NoFace, match="several faces"):
        strict.find_face(both)
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(NoFace, match="no face"):
        landmarker.find_face(noise)


def test_huge_image_is_downscaled_for_detection_only(demo, landmarker):
    face = demo["astronaut"]
    big = cv2.resize(face, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    capped = DlibLandmarker(max_side=512)
    res = capped.find_face(big)
    assert res.detect_scale == pytest.approx(1 / 3, abs=1e-3)
    ref = (landmarker.find_face(face).points68 + 0.5) * 3 - 0.5  # same face, original-pixel coordinates
    assert np.linalg.norm(res.points68 - ref, axis=1).mean() < 0.05 * _outer_corners(ref)
    assert res.points68.max() > 600  # points are in the big image's pixels, not the detector's


@pytest.mark.parametrize("photo", ["grace_hopper", "astronaut"])
def test_mirroring_a_photo_permutes_the_40_points_by_the_flip_pairs(photo, demo, landmarker):
    image = demo[photo]
    p40 = dlib_to_face40(landmarker.find_face(image).points68)
    m40 = dlib_to_face40(landmarker.find_face(np.ascontiguousarray(image[:, ::-1])).points68)
    expected = flip_points(p40, FACE40, image.shape[1])
    err = np.linalg.norm(m40 - expected, axis=1)
    io_px = float(np.linalg.norm(p40[23:29].mean(0) - p40[29:35].mean(0)))
    # dlib is not exactly mirror-symmetric: a few px at these ~60-110 px inter-ocular distances
    assert err.mean() < 0.04 * io_px and err.max() < 0.12 * io_px
    # without the relabelling the mirrored points would be far off (the test can fail)
    unlabelled = p40.copy()
    unlabelled[:, 0] = image.shape[1] - 1 - unlabelled[:, 0]
    assert np.linalg.norm(m40 - unlabelled, axis=1).mean() > 3 * err.mean()


# ---------------------------------------------------------------- views: pixels and points move together
def _dots(shape, points, sigma=2.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape[:2])
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.dstack([np.clip(img * 255, 0, 255).astype(np.uint8)] * 3)


def test_jittered_views_transform_points_exactly():
    pts = np.array([[150.0, 160.0], [260.0, 170.0], [200.0, 250.0], [170.0, 300.0], [240.0, 310.0]])
    image = _dots((480, 420, 3), pts, sigma=3.0)
    square = np.array([110.0, 120.0, 240.0])
    jitter = Jitter(scale=0.1, shift=0.05, angle=15.0, mirror_prob=0.5, brightness=0, contrast=0, saturation=0)
    views = make_views(square, 6, jitter, np.random.default_rng(3))
    assert views[0].is_identity and any(v.mirror for v in views) and any(v.angle for v in views)
    for view in views:
        crop = render_view(image, view, SIZE).astype(float)[..., 0]
        m = view_matrix(view, SIZE)  # includes the mirror: positions without relabelling
        expected = pts @ m[:, :2].T + m[:, 2]
        for x, y in expected:
            xi, yi = int(round(x)), int(round(y))
            win = crop[yi - 4: yi + 5, xi - 4: xi + 5]
            gy, gx = np.mgrid[yi - 4: yi + 5, xi - 4: xi + 5]
            cx, cy = (win * gx).sum() / win.sum(), (win * gy).sum() / win.sum()
            assert abs(cx - x) < 0.5 and abs(cy - y) < 0.5


def test_mirrored_view_points_are_relabelled_by_the_layout():
    rng = np.random.default_rng(1)
    pts68 = rng.uniform(100, 300, (68, 2))
    view = View((80.0, 90.0, 260.0), angle=4.0, mirror=True)
    plain = View((80.0, 90.0, 260.0), angle=4.0, mirror=False)
    got = view_points(pts68, view, SIZE, IBUG68)
    assert np.allclose(got, flip_points(view_points(pts68, plain, SIZE, IBUG68), IBUG68, SIZE))
    m = view_matrix(view, SIZE)
    assert np.allclose(got[IBUG68.flip_permutation()], pts68 @ m[:, :2].T + m[:, 2])


def test_canonical_view_is_the_canonical_crop(demo):
    image = demo["grace_hopper"]
    for square in (np.array([150.0, 120.0, 260.0]), np.array([-30.0, 400.0, 300.0]), np.array([200.0, 200.0, 90.0])):
        for size in (SIZE, 256):
            assert np.array_equal(render_view(image, View(tuple(square)), size), crop_image(image, square, size))


def test_rotated_views_follow_the_crop_rule_on_a_window(demo):
    image = demo["grace_hopper"]
    for square in ((150.0, 120.0, 260.0), (-30.0, 400.0, 300.0), (200.0, 200.0, 90.0)):
        view = View(square, angle=7.0)
        for size in (SIZE, 256):
            side = square[2]
            whole = cv2.GaussianBlur(image, (0, 0), 0.5 * side / size) if side / size > 1.5 else image
            whole = cv2.warpAffine(whole, view_matrix(view, size), (size, size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            diff = np.abs(render_view(image, view, size).astype(int) - whole)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float rounding only


def test_colour_jitter_is_mild_and_seeded(demo):
    image = demo["astronaut"]
    sq = np.array([150.0, 50.0, 140.0])
    a = make_views(sq, 3, JITTER, np.random.default_rng(7))
    b = make_views(sq, 3, JITTER, np.random.default_rng(7))
    assert a == b
    base = render_view(image, View(a[1].square, a[1].angle, a[1].mirror), SIZE).astype(float)
    jittered = render_view(image, a[1], SIZE).astype(float)
    assert 0 < np.abs(jittered - base).mean() < 30


# ---------------------------------------------------------------- split and lid shift
def test_split_by_photo():
    ids = [f"p{i}" for i in range(10)]
    s = split_by_photo(ids, 0.2, 0)
    assert sorted(s.values()).count("test") == 2 and s == split_by_photo(list(reversed(ids)), 0.2, 0)
    assert sorted(split_by_photo(["a", "b"], 0.0, 0).values()) == ["test", "train"]
    assert sorted(split_by_photo(["a", "b"], 1.0, 0).values()) == ["test", "train"]
    assert split_by_photo(["a"], 0.5, 0) == {"a": "train"}


def test_auto_lid_shift_matches_the_anime_eye_opening(demo, landmarker):
    face = landmarker.find_face(demo["astronaut"])
    views = crop_views(demo["astronaut"], face, Framing(margin=1.25, y_shift=-0.05), "meaning", 128, 3, JITTER, np.random.default_rng(0))
    raw = dlib_to_face40(np.stack([v.points68_112 for v in views]))
    anime = raw.copy()
    anime[:, FACE40_LOWER_LIDS, 1] += 9.5
    anime[:, [23, 24, 25, 29, 30, 31], 1] -= 2.0  # anime eyes: 11.5 px more open than the photo's
    shift, a_open, p_open = auto_lid_shift(anime, np.ones(anime.shape[:2], bool), raw)
    assert shift == pytest.approx(11.5) and a_open - p_open == pytest.approx(11.5)
    assert eye_opening(dlib_to_face40(np.stack([v.points68_112 for v in views]), "meaning", shift)) == pytest.approx(a_open)
    hidden = np.ones(anime.shape[:2], bool)
    hidden[:, 27] = False  # left lower lid hidden everywhere: only the right eyes count
    assert eye_opening(anime, hidden) == pytest.approx((anime[:, 33, 1] - anime[:, 30, 1]).mean())


# ---------------------------------------------------------------- the stage, end to end
def _stage_dir(project, demo: dict, **overrides) -> Path:
    project.set("photo_landmarks", **{"source": "folder", "photos_dir": "photos", "variants": 2, "large_size": 128,
                                      **overrides})
    tmp_path = project.root
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    Image.fromarray(demo["grace_hopper"]).save(photos / "hopper.jpg", quality=92)
    rgba = np.dstack([demo["astronaut"], np.full(demo["astronaut"].shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(photos / "sub" / "astro.png")
    gray16 = cv2.cvtColor(demo["grace_hopper"], cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(photos / "hopper16.png"), np.ascontiguousarray(gray16[:, ::-1]))
    (photos / "notes.txt").write_text("hello\n")
    (photos / "README.md").write_text("put photos here\n")  # documentation: not counted
    (photos / "blank.png").write_bytes(cv2.imencode(".png", np.full((200, 200, 3), 128, np.uint8))[1].tobytes())
    buf = io.BytesIO()
    Image.fromarray(demo["astronaut"]).save(buf, format="JPEG")
    (photos / "cut.jpg").write_bytes(buf.getvalue()[:5000])
    return tmp_path


@pytest.mark.slow
def test_stage_end_to_end(tiny_project, load_stage, demo, monkeypatch):
    from face2anime.io import read_arrays, read_table, write_arrays

    root = _stage_dir(tiny_project, demo, lower_lid_shift="auto")
    monkeypatch.chdir(root)
    detect, stage = load_stage("detect_photos"), load_stage("photo_landmarks")
    with pytest.raises(UserError, match="run `dvc repro detect_photos` first"):
        stage.main()
    assert "3/6 photos with a face (3 skipped), 9 crop views" in detect.main()  # no anime data needed
    with pytest.raises(UserError, match="anime crops"):  # auto needs the anime side
        stage.main()
    rng = np.random.default_rng(0)
    anime_pts = np.tile(np.linspace(20, 90, 40)[None, :, None], (6, 1, 2)) + rng.normal(0, 1, (6, 40, 2))
    anime_pts[:, [24, 30], 1] = 40.0
    anime_pts[:, [27, 33], 1] = 52.0  # eye opening 12 px
    (root / "data" / "anime").mkdir(parents=True)
    write_arrays(root / "data/anime/crops.npz", face_id=np.array([f"f{i}" for i in range(6)]),
                 points112=anime_pts.astype(np.float32), visible=np.ones((6, 40), bool))
    summary = stage.main()
    assert "3/6 photos ok (3 skipped)" in summary

    df = read_table(root / "data/photos/photos.csv")
    arrays = read_arrays(root / "data/photos/crops.npz")
    metrics = yaml.safe_load((root / "metrics/photos.json").read_text())
    assert metrics["photos"] == 6 and metrics["ok"] == 3 and metrics["crops"] == 9
    assert metrics["skipped_by_reason"] == {"no face": 1, "not an image": 1, "truncated": 1}
    assert {s["photo"] for s in metrics["skipped_photos"]} == {"photos/blank.png", "photos/notes.txt", "photos/cut.jpg"}
    ok = df[df.status == "ok"]
    assert list(ok.photo_id) == list(arrays["photo_id"]) and len(ok) == 9
    assert set(ok.split) == {"train", "test"}
    assert ok.groupby("source_photo").split.nunique().max() == 1  # all views of a photo on one side
    assert set(df[df.status == "skipped"].reason) == {"no face", "not an image", "truncated"}
    assert arrays["color112"].shape == (9, 112, 112, 3) and arrays["color_large"].shape == (9, 128, 128, 3)
    lids = list(FACE40_LOWER_LIDS)
    diff = arrays["points112"][:, lids, 1] - arrays["points112_raw"][:, lids, 1]
    assert np.allclose(diff, metrics["lower_lid_shift_px"], atol=1e-3)
    assert metrics["lower_lid_shift_px"] == pytest.approx(12.0 - metrics["photo_eye_opening_px"], abs=1e-2)
    assert metrics["mean_offset_to_anime_px"]["target"]["mean"] > 0
    assert (root / "reports/mean_shapes.png").stat().st_size > 10_000

    first = {p: (root / p).read_bytes() for p in ("data/photos/crops.npz", "data/photos/photos.csv",
                                                  "metrics/photos.json", "reports/mean_shapes.png")}
    detect.main()
    stage.main()
    assert all((root / p).read_bytes() == b for p, b in first.items())  # deterministic

    # a numeric lid shift: the targets ignore the anime crops, so an anime change leaves data/photos as it was
    tiny_project.set("photo_landmarks", lower_lid_shift=8.8)
    stage.main()
    before = {p: (root / p).read_bytes() for p in ("data/photos/crops.npz", "data/photos/photos.csv")}
    write_arrays(root / "data/anime/crops.npz", face_id=np.array(["f0"]),
                 points112=anime_pts[:1].astype(np.float32) + 5, visible=np.ones((1, 40), bool))
    assert "mean offset to anime" in stage.main()
    assert all((root / p).read_bytes() == b for p, b in before.items())
    assert yaml.safe_load((root / "metrics/photos.json").read_text())["anime_faces_compared"] == 1


def test_stage_errors_are_one_line(tiny_project, demo):
    root = _stage_dir(tiny_project, demo, photos_dir="missing")
    tmp_path = tiny_project.root
    for stage, message in (("detect_photos", "missing does not exist"), ("photo_landmarks", "run `dvc repro detect_photos`")):
        proc = subprocess.run([sys.executable, str(ROOT / f"stages/{stage}.py")], cwd=root,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and message in proc.stderr
        assert proc.stderr.startswith(f"{stage}: error:")
    with pytest.raises(UserError, match="no photos"):
        (tmp_path / "emptydir").mkdir()
        list_photos(tmp_path / "emptydir")


# ---------------------------------------------------------------- accuracy against human annotations
@pytest.mark.slow
def test_helen_nme_through_the_stage_matches_raw_dlib(landmarker):
    if not HELEN.is_dir():
        pytest.skip(f"{HELEN} not available")
    from face2anime.metrics.photo_eval import annotated_photos, evaluate

    pairs = annotated_photos(HELEN)[::6]  # 55 of the 330 photos (the benchmark scores all of them)
    framing = Framing(**yaml.safe_load((ROOT / "params.yaml").read_text())["framing"])
    res = evaluate(pairs, landmarker, framing, "meaning")
    r = res.nme("meaning")
    assert r["images"] >= 0.9 * len(pairs)
    assert r["nme68_stage"] <= 1.5 * r["nme68_raw"] and r["nme68_stage"] < 0.06
    assert r["nme40_stage"] <= 1.5 * r["nme40_raw"] and r["nme40_stage"] < 0.06
