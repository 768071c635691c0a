#!/usr/bin/env python
"""Try `face2anime convert` as a user would, on the trained demo generator, and check what it says.

Builds a scratch input set from the demo photos: the photos themselves, one picture holding both faces, a
picture without a face, a corrupt file, a file of an unknown kind and a short video (the test clip of
`face2anime.photos.clip` at 480x360: still, pan, zoom, roll, a cut, a second face entering; with a tone as audio);
runs the installed `face2anime convert` command on it in paste mode, then in crops mode, and checks the
exit codes, the counts of its summary (no demo face left unpainted: a SPADE painter conditions every one),
the outputs (sizes, frame count and rate of the video) and that no Python traceback was printed; then
`face2anime export --format onnx` of the same model, run once through onnxruntime (an `image` input for the
study generators, `conditioning` for the painter). Writes `reports/convert/before_after.png` (each picture
next to its result; `--sheet` elsewhere).
Run by `.ci/run` after `dvc repro`; by hand: `.venv/bin/python scripts/convert_check.py [--model VARIANT]`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from face2anime.convert.video import decoded_facts, has_audio
from face2anime.io import write_image
from face2anime.photos.clip import MotionClipSpec, make_clip, write_clip
from face2anime.photos.files import demo_photos, load_photo

ROOT = Path(__file__).resolve().parents[1]
SHEET = ROOT / "reports" / "convert" / "before_after.png"
CLIP = MotionClipSpec(width=480, height=360).scaled(0.25)   # every segment of the test clip, a few frames each


def make_inputs(folder: Path) -> dict[str, Path]:
    """The scratch inputs; returns name -> path."""
    photos = [load_photo(p.path, 0) for p in demo_photos()]
    files: dict[str, Path] = {}
    pics = folder / "pictures"
    pics.mkdir(parents=True)
    for i, rgb in enumerate(photos):
        files[f"photo{i}"] = pics / f"photo{i}.jpg"
        cv2.imwrite(str(files[f"photo{i}"]), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    h = min(p.shape[0] for p in photos)  # both faces side by side in one picture
    both = np.concatenate([cv2.resize(p, (round(p.shape[1] * h / p.shape[0]), h)) for p in photos], axis=1)
    files["two_faces"] = pics / "two_faces.png"
    cv2.imwrite(str(files["two_faces"]), both[..., ::-1])
    yy, xx = np.mgrid[0:240, 0:320]  # a gradient with stripes: no face
    no_face = np.stack([xx * 255 // 320, yy * 255 // 240, ((xx // 20) % 2) * 200], axis=-1).astype(np.uint8)
    files["no_face"] = pics / "no_face.png"
    cv2.imwrite(str(files["no_face"]), no_face)
    files["corrupt"] = pics / "corrupt.jpg"
    files["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG" + bytes(range(256)) * 4)
    files["unknown"] = pics / "notes.txt"
    files["unknown"].write_text("not a picture\n")
    files["video"] = write_clip(make_clip(CLIP), folder / "clip.mp4")
    return files


def run(cmd: list[str]) -> tuple[int, str]:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    print(out.rstrip())
    return proc.returncode, out


def before_after(pairs: list[tuple[Path, Path]], height: int = 320) -> np.ndarray:
    rows = []
    for before, after in pairs:
        a, b = cv2.imread(str(before)), cv2.imread(str(after))
        w = round(a.shape[1] * height / a.shape[0])
        gap = np.full((height, 8, 3), 255, np.uint8)
        rows.append(np.concatenate([cv2.resize(a, (w, height), interpolation=cv2.INTER_AREA), gap,
                                    cv2.resize(b, (w, height), interpolation=cv2.INTER_AREA)], axis=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 8), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(rows, axis=0)


def onnx_runs(path: Path) -> bool:
    """The exported file takes a batch of 2 of its declared input and returns 2 RGB images in [-1, 1]."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    x = np.random.default_rng(0).uniform(-1, 1, (2, *inp.shape[1:])).astype(np.float32)
    (y,) = session.run(None, {inp.name: x})
    print(f"  onnx: input {inp.name} {inp.shape} -> output {list(y.shape)}")
    return y.shape == (2, 3, *inp.shape[2:]) and bool(np.isfinite(y).all()) and float(np.abs(y).max()) <= 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="variant or generator folder (default: params convert.model)")
    ap.add_argument("--sheet", type=Path, default=SHEET, help="where the before/after picture goes")
    args = ap.parse_args(argv)
    exe = shutil.which("face2anime") or str(Path(sys.executable).parent / "face2anime")
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            problems.append(what)

    with tempfile.TemporaryDirectory(prefix="face2anime-convert-") as tmp:
        tmp = Path(tmp)
        files = make_inputs(tmp / "in")
        model = ["--model", args.model] if args.model else []
        out = tmp / "paste"
        rc, text = run([exe, "convert", str(tmp / "in" / "pictures"), str(files["video"]), "-o", str(out), "-q", *model])
        check(rc == 0, "paste run exits 0")
        check("Traceback" not in text, "no traceback")
        check("converted 3 pictures (4 faces) and 1 video" in text, "3 pictures with 4 faces and the video converted")
        check("1 without a face copied unchanged" in text, "the no-face picture is reported and copied")
        check("2 skipped" in text and "corrupt.jpg" in text and "notes.txt" in text,
              "the corrupt and the unknown file are listed skips")
        check("face skipped" not in text and "not paintable" not in text, "every face found was painted")
        for name in ("photo0", "photo1", "two_faces", "no_face"):
            src, dst = files[name], out / "pictures" / files[name].name
            a, b = cv2.imread(str(src)), cv2.imread(str(dst)) if dst.exists() else None
            check(b is not None and a.shape == b.shape, f"{dst.name} written at the input's size")
        if (out / "pictures" / "no_face.png").exists():
            check(np.array_equal(cv2.imread(str(files["no_face"])), cv2.imread(str(out / "pictures" / "no_face.png"))),
                  "no-face picture copied byte-equal in pixels")
        n_in, fps_in, w_in, h_in = decoded_facts(files["video"])
        if (out / "clip.mp4").exists():
            n_out, fps_out, w_out, h_out = decoded_facts(out / "clip.mp4")
            check((n_out, w_out, h_out) == (n_in, w_in, h_in) and abs(fps_out - fps_in) < 1e-3,
                  f"video: {n_out} frames {w_out}x{h_out} at {fps_out:g} fps (input {n_in} {w_in}x{h_in} {fps_in:g})")
            if has_audio(files["video"]):
                check(bool(has_audio(out / "clip.mp4")), "video: the audio track is carried over")
        else:
            check(False, "video written")
        # the video went the tracked way (convert.video_tracking: true): the one face of every frame, across the
        # cut too, none twice (a second face appears only in the last segment, where it slides in and is picked
        # up within detect_every frames); the frame-by-frame way (video_tracking=false) gives the same frames
        clip = make_clip(CLIP)
        entering = len(clip.segment("enter"))
        found = re.search(r"1 video \((\d+) frames, (\d+) faces", text)
        faces = int(found.group(2)) if found else -1
        check(len(clip.frames) <= faces <= len(clip.frames) + entering,
              f"tracked video: {faces} faces in {len(clip.frames)} frames (one in each, a second in at most "
              f"the last {entering})")
        rc, text = run([exe, "convert", str(files["video"]), "-o", str(tmp / "fbf"), "-q", "--set",
                        "video_tracking=false", *model])
        facts = decoded_facts(tmp / "fbf" / "clip.mp4") if (tmp / "fbf" / "clip.mp4").exists() else None
        check(rc == 0 and facts is not None and facts[0] == n_in, "frame-by-frame video (video_tracking=false) written")
        crops = tmp / "crops"
        rc, text = run([exe, "convert", str(files["two_faces"]), "-o", str(crops), "--mode", "crops", "-q", *model])
        faces = sorted(crops.glob("two_faces_face*.png"))
        check(rc == 0 and len(faces) == 2, f"crops mode: {len(faces)} face files from the two-face picture")
        rc, text = run([exe, "convert", str(files["corrupt"]), str(files["no_face"]), "-o", str(tmp / "none"),
                        "--no-face", "skip", "-q", *model])
        check(rc == 1 and "Traceback" not in text, "nothing convertible: exit 1, no traceback")
        onnx_file = tmp / "model.onnx"
        rc, text = run([exe, "export", "--format", "onnx", "-o", str(onnx_file), *model])
        check(rc == 0 and onnx_file.is_file() and "Traceback" not in text, "export --format onnx exits 0")
        if onnx_file.is_file():
            check(onnx_runs(onnx_file), "the ONNX file runs in onnxruntime (batch 2)")
        if not problems:
            sheet = before_after([(files[n], out / "pictures" / files[n].name) for n in ("photo0", "photo1", "two_faces")])
            write_image(args.sheet, sheet)
            print(f"wrote {args.sheet}")
    print(f"convert_check: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
