"""face2anime serve: the page's engine (the generators offered, every bad upload answered, the same bytes as
`face2anime convert`) and the page itself, end to end in a real headless Chromium: upload a demo photo, press
Convert, check the result; a text file, a file that is not a picture and a 12000x12000 PNG are answered in the
page; the page still converts afterwards (another generator, crops); stopping the server removes its
temporary folder. Generators are random-weight folders in tmp_path (test_convert's builders).

The browser test skips only where no Chromium can be found (`make setup` installs Debian's `chromium` with
apt-get). FACE2ANIME_WEB_SCREENSHOT=docs/web.png makes it save a screenshot of the page after the first
conversion (the README's picture).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face2anime.convert.cli import main
from face2anime.convert.faces import FaceFinder
from face2anime.convert.model import read_model
from face2anime.convert.run import convert_paths
from face2anime.convert.settings import load_settings
from face2anime.convert.web.engine import PageEngine, find_variants
from face2anime.photos.files import demo_photos, load_photo
from test_convert import _save_model, _save_painter, _square_diffs

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
KID, KID_STD, RMSE = 1234.4, 98.6, 12.34
START_TIMEOUT_S = 180      # python + torch + gradio imports on 2 busy cores
CONVERT_TIMEOUT_MS = 90_000


# ---------------------------------------------------------------- shared set-up
@pytest.fixture(scope="module")
def gen_root(tmp_path_factory) -> tuple[Path, Path]:
    """(models folder with a random study generator and a random painter, metrics folder for the first)."""
    root = tmp_path_factory.mktemp("web")
    models, metrics = root / "models", root / "metrics"
    _save_model(models / "animegan-random")
    _save_painter(models / "spade-random")
    metrics.mkdir()
    (metrics / "animegan-random.json").write_text(json.dumps(
        {"style": {"kid": {"mean": KID, "std": KID_STD}}, "landmarks": {"output": {"rmse_px": RMSE}}}))
    return models, metrics


@pytest.fixture(scope="module")
def photos() -> dict[str, Path]:
    return {p.photo_id: p.path for p in demo_photos()}


def _png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not a picture"
    return img[..., ::-1]


# ---------------------------------------------------------------- the engine, without the page
def test_every_accepted_generator_is_offered_with_its_metrics(tmp_path, gen_root):
    models, metrics = gen_root
    mixed = tmp_path / "models"
    shutil.copytree(models, mixed)
    _save_model(mixed / "old", record={})   # written before config.json recorded its framing: convert refuses it
    (mixed / "notes").mkdir()               # no config.json: not a generator folder, not mentioned
    variants, refused = find_variants(mixed, metrics)
    assert [v.name for v in variants] == ["animegan-random", "spade-random"]
    assert variants[0].label == f"animegan-random · KID {KID:.0f} ± {KID_STD:.0f} · landmark RMSE {RMSE:.1f} px"
    assert variants[1].label == "spade-random · not evaluated"
    assert len(refused) == 1 and refused[0].startswith("old: ") and "framed" in refused[0]


@pytest.fixture(scope="module")
def engine(gen_root, tmp_path_factory) -> PageEngine:
    variants, _ = find_variants(*gen_root)
    return PageEngine(variants, load_settings(PARAMS), torch.device("cpu"), 1_000_000, 1,
                      tmp_path_factory.mktemp("results"), 3600)


def test_page_gives_the_bytes_convert_writes(tmp_path, engine, gen_root, photos):
    """The page's paste result is the very picture `face2anime convert` writes (one code path)."""
    src = photos["astronaut"]
    result = engine.convert(src, "animegan-random", "paste", False)
    assert result.ok and result.faces == 1, result.message
    report = convert_paths([src], tmp_path / "out", gen_root[0] / "animegan-random", params=PARAMS, progress=False)
    assert report.exit_code == 0
    assert result.download == result.after and result.download.suffix == ".png"
    assert np.array_equal(_decode(result.download.read_bytes()), _decode((tmp_path / "out/astronaut.png").read_bytes()))
    assert np.array_equal(result.before, load_photo(src, 0))


def test_crops_mode_and_overlay(engine, photos):
    result = engine.convert(photos["grace_hopper"], "spade-random", "crops", True)
    assert result.ok and result.download.suffix == ".zip", result.message
    with zipfile.ZipFile(result.download) as archive:
        (name,) = archive.namelist()
        assert name == "grace_hopper_face0.png" and _decode(archive.read(name)).shape == (112, 112, 3)
    photo = load_photo(photos["grace_hopper"], 0)
    assert result.before.shape == photo.shape and not np.array_equal(result.before, photo)   # squares and points drawn


@pytest.mark.slow
def test_concurrent_conversions_give_the_same_bytes(engine, photos):
    """The page's queue runs several conversions at once: each borrows its own dlib (one dlib shared by
    threads converting pictures of different sizes crashed the server: segfault) and every conversion gives
    the bytes of that photo's conversion alone."""
    from concurrent.futures import ThreadPoolExecutor

    srcs = [photos["grace_hopper"], photos["astronaut"]]
    alone = [engine.convert(src, "animegan-random", "paste", False).download.read_bytes() for src in srcs]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda k: engine.convert(srcs[k % 2], "animegan-random", "paste", False), range(16)))
    assert all(r.ok for r in results), [r.message for r in results]
    assert all(r.download.read_bytes() == alone[k % 2] for k, r in enumerate(results))
    assert len({r.download for r in results}) == 16   # one result folder each


@pytest.mark.parametrize("case", ["none", "text", "empty", "truncated", "too large", "no face", "unknown model"])
def test_bad_uploads_are_answered_with_a_message(tmp_path, engine, photos, case):
    blank = np.full((300, 400, 3), 128, np.uint8)
    if case == "none":
        path, words = None, "Upload a photo"
    elif case == "text":
        path, words = tmp_path / "photo.jpg", "not an image"
        path.write_text("hello, I am not a picture")
    elif case == "empty":
        path, words = tmp_path / "photo.png", "empty file"
        path.write_bytes(b"")
    elif case == "truncated":
        path, words = tmp_path / "cut.jpg", "truncated"
        data = photos["grace_hopper"].read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif case == "too large":
        path, words = _png(tmp_path / "big.png", np.zeros((1001, 1000, 3), np.uint8)), "1000x1001 > max_pixels 1000000"
    elif case == "no face":
        path, words = _png(tmp_path / "wall.png", blank), "No face found"
    else:
        path, words = photos["astronaut"], "unknown generator 'nope'"
    result = engine.convert(path, "nope" if case == "unknown model" else "animegan-random", "paste", False)
    assert words in result.message and not result.ok and result.download is None, result.message
    if case == "no face":   # the picture comes back unchanged
        assert np.array_equal(result.before, blank) and np.array_equal(result.after, blank)


def test_serve_without_generators_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["serve", "--models", str(tmp_path / "empty"), "--params", str(PARAMS)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("face2anime serve: error: no trained generator in ") and "\n" not in err


# ---------------------------------------------------------------- the page in a real browser
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`face2anime serve` in a subprocess; its output collected by a thread (the pipe never fills)."""

    def __init__(self, models: Path, metrics: Path):
        self.port = _free_port()
        cmd = [sys.executable, "-m", "face2anime.convert.cli", "serve", "--port", str(self.port), "--device", "cpu",
               "--models", str(models), "--set", f"metrics={metrics}", "--params", str(PARAMS)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(START_TIMEOUT_S) or self.proc.poll() is not None:
            self.stop()
            pytest.fail("face2anime serve did not start:\n" + "".join(self.lines[-40:]))
        started = next(line for line in self.lines if line.startswith("face2anime serve: http"))
        self.url = f"http://127.0.0.1:{self.port}/"
        self.temp = Path(re.search(r"uploads in (\S+), removed on exit", started).group(1))

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("face2anime serve: http"):
                self.ready.set()
        self.ready.set()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


STALE = Path(tempfile.gettempdir()) / "face2anime-serve-999999999-test"   # no such process: a dead server's


@pytest.fixture(scope="module")
def server(gen_root):
    (STALE / "gradio").mkdir(parents=True, exist_ok=True)
    server = Server(*gen_root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: run `make setup`")
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium on this machine: `make setup` installs Debian's chromium with apt-get, which was "
                    "not available here (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True)
        yield browser
        browser.close()


def _convert(page, expect: str) -> str:
    """Press Convert and wait until the status line changes to a text with `expect` in it."""
    before = page.inner_text("#status")
    page.click("#convert")
    page.wait_for_function("([t, old]) => { const s = document.querySelector('#status').innerText; "
                           "return s !== old && s.includes(t); }", arg=[expect, before], timeout=CONVERT_TIMEOUT_MS)
    return page.inner_text("#status")


def _upload(page, path: Path) -> None:
    remove = page.locator("#photo button[aria-label='Remove Image']")
    if remove.count():
        remove.click()
    page.set_input_files("#photo input[type=file]", str(path))


@pytest.mark.slow
def test_page_in_a_real_browser(browser, server, gen_root, photos, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    page.wait_for_selector("#convert")

    # the picker lists every generator with its numbers
    page.click("#model input")
    options = page.locator("ul[role=listbox] li").all_inner_texts()
    assert any(f"KID {KID:.0f} ± {KID_STD:.0f}" in o and "animegan-random" in o for o in options), options
    assert any("spade-random · not evaluated" in o for o in options), options
    page.keyboard.press("Escape")

    # a demo photo, paste mode, with the landmark overlay on the 'before' side
    src = photos["grace_hopper"]
    _upload(page, src)
    page.wait_for_selector("#photo img")
    page.check("#overlay input")
    assert "Converted 1 face with animegan-random (paste)" in _convert(page, "Converted")
    page.wait_for_selector("#after img")
    page.wait_for_selector("#before img")
    after_url = page.get_attribute("#after img", "src")
    assert str(server.temp) in after_url   # results are served from the server's temporary folder
    after = _decode(page.request.get(after_url).body())
    photo = load_photo(src, 0)
    assert after.shape == photo.shape
    outside, centre = _square_diffs(gen_root[0] / "animegan-random", photo, after)
    assert outside.max() == 0 and centre.mean() > 5, (outside.max(), centre.mean())
    download = page.get_attribute("#download a", "href")
    assert page.request.get(download).body() == page.request.get(after_url).body()
    if os.environ.get("FACE2ANIME_WEB_SCREENSHOT"):
        page.wait_for_timeout(500)
        page.screenshot(path=os.environ["FACE2ANIME_WEB_SCREENSHOT"], full_page=True)

    # a text file: refused by the upload box itself
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    _upload(page, notes)
    page.get_by_text("Invalid file type").first.wait_for(timeout=CONVERT_TIMEOUT_MS)

    # text in a file named like a picture, then a 12000x12000 PNG: answered by the engine
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a picture either")
    _upload(page, fake)
    assert "holiday.jpg cannot be converted: not an image" in _convert(page, "cannot be converted")
    huge = np.zeros((12000, 12000), np.uint8)
    huge[::97] = 200
    assert cv2.imwrite(str(tmp_path / "huge.png"), huge)
    del huge
    _upload(page, tmp_path / "huge.png")
    assert "too large: 12000x12000 > max_pixels" in _convert(page, "too large")

    # the page still works: the other demo photo, the painter, crops
    _upload(page, photos["astronaut"])
    page.wait_for_selector("#photo img")
    page.click("#model input")
    page.locator("ul[role=listbox] li", has_text="spade-random").click()
    page.click("#mode label:has-text('crops')")
    assert "Converted 1 face with spade-random (crops)" in _convert(page, "Converted")
    archive = zipfile.ZipFile(io.BytesIO(page.request.get(page.get_attribute("#download a", "href")).body()))
    assert archive.namelist() == ["astronaut_face0.png"]
    page.close()


@pytest.mark.slow
def test_stopping_the_server_removes_its_temporary_folder(server):
    assert not STALE.exists(), "the folder a dead server left was not removed at start"
    assert server.temp.is_dir()
    uploads = [p for p in server.temp.rglob("*") if p.is_file()]
    assert uploads, "nothing was kept in the temporary folder"
    assert server.stop() == 0
    deadline = time.time() + 10
    while server.temp.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not server.temp.exists()
    assert not any(line.startswith("Traceback") for line in server.lines), "".join(server.lines)
