#!/usr/bin/env python
"""docs/web.png: the page of `face2anime serve` with the project's trained generators, as a user sees it.

Starts `face2anime serve` on a free localhost port (models/gan, metrics/gan: what `dvc repro` wrote), opens it
in headless Chromium (Playwright driving the system browser, as tests/test_web.py does), converts a demo photo
with `--model` (default: the painter, spade-landmark) with the landmark overlay on, and saves a screenshot.
The browser test (tests/test_web.py) checks the page itself on random-weight generators; this script only
makes the picture. Run after `dvc repro`: `.venv/bin/python scripts/web_screenshot.py [-o docs/web.png]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from face2anime.photos.files import demo_photos

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="spade-landmark", help="generator shown in the screenshot")
    ap.add_argument("--photo", default="grace_hopper", help="demo photo name")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "web.png")
    args = ap.parse_args()
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                    None)
    if chromium is None:
        print("web_screenshot: error: no Chromium on this machine (make setup installs it with apt-get)")
        return 1
    photo = next(p.path for p in demo_photos() if p.path.stem == args.photo)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "face2anime.convert.cli", "serve", "--port", str(port),
                               "--device", "cpu"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = f"http://127.0.0.1:{port}/"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deadline = time.time() + 120
            while True:
                try:
                    page.goto(url)
                    break
                except Exception:  # noqa: BLE001 - the server is still starting
                    if time.time() > deadline or server.poll() is not None:
                        print("web_screenshot: error: face2anime serve did not start")
                        return 1
                    time.sleep(1)
            page.wait_for_selector("#convert")
            page.click("#model input")
            page.locator("ul[role=listbox] li", has_text=args.model).first.click()
            page.set_input_files("#photo input[type=file]", str(photo))
            page.wait_for_selector("#photo img")
            page.check("#overlay input")
            page.click("#convert")
            page.wait_for_function("document.querySelector('#status').innerText.includes('Converted')",
                                   timeout=120_000)
            page.wait_for_selector("#after img")
            page.wait_for_timeout(800)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            status = page.inner_text("#status")
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"web_screenshot: {args.out} ({status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
