"""Video conversion, frame by frame (video_tracking: false) against tracked (the default), on the test clip, in one run.

The clip (`face2anime.photos.clip`: the astronaut still, panning, zooming, rolling, a hard cut to Grace Hopper,
the astronaut's face sliding in) is written as an .mp4 with a tone as its audio track and converted by convert's
own `Converter` (paste mode, CPU, `--threads`) both ways, interleaved `--repeats` times (fastest kept: other load
on a shared machine only adds time). Reported, for both:
- warping error of the output (Lai et al. 2018; `face2anime.metrics.temporal`: DIS flow of the input frames,
  forward-backward occlusion mask; the pair across the cut left out), on the face regions (the pasted faces'
  inscribed discs, both runs' together) and on the whole frame, with the input's own warping error (the floor);
- landmark jitter on the still part: mean displacement of the 68 points used, px per frame (the still frames
  differ only by sensor noise); the same for the crop square's corner;
- faces per second (faces written / conversion wall time, setup excluded) on `--threads` cores;
- faces lost / duplicated around the cut (frames whose face count differs from the clip's, 4 frames before the
  cut to the end of the cut's shot) and the identities seen there;
- frame count, size, rate and audio of the written video against the input's.
`--strip PATH` writes 8 consecutive output frames of the still head, both ways, with their frame-to-frame
differences (x4) under them (docs/video_stability.png).

Generator: `--model` (folder or variant), default models/gan/animegan-landmark when present, else random weights
at params.yaml's gan.animegan.generator size (what the demo generator is trained at; the speed is the same).
Run: `OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_video.py [--repeats 3 --strip docs/video_stability.png]`.
`--smoke` (tests/test_benchmarks.py): the clip at 480x360 and a quarter as long, 1 repeat, 1 thread; its numbers
mean nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_convert import prepare_model  # noqa: E402  (same generator rule as the convert benchmark)

from face2anime.convert.faces import FaceFinder  # noqa: E402
from face2anime.convert.inputs import collect  # noqa: E402
from face2anime.convert.model import read_model  # noqa: E402
from face2anime.convert.run import Converter  # noqa: E402
from face2anime.convert.settings import load_settings, parse_assignment  # noqa: E402
from face2anime.convert.stylize import FacePainter, make_painter  # noqa: E402
from face2anime.convert.video import decoded_facts, has_audio  # noqa: E402
from face2anime.errors import UserError  # noqa: E402
from face2anime.gan.models import load_generator  # noqa: E402
from face2anime.io import write_image  # noqa: E402
from face2anime.metrics.temporal import pair_flows, warping_error  # noqa: E402
from face2anime.photos.clip import MotionClipSpec, make_clip, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
MODES = {"frame-by-frame": (False, 0.0), "tracked": (True, 0.0)}   # name -> (video_tracking, flow_blend)


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(f[..., ::-1]))
    cap.release()
    return frames


def convert_once(video: Path, out: Path, model_dir: Path, generator, mode: tuple[bool, float], threads: int,
                 extra: dict | None = None):
    """(wall s, outcome, face log, timings, CPU s of this process) of one conversion by convert's own Converter."""
    settings = load_settings(PARAMS, {"device": "cpu", "threads": threads, "mode": "paste", "video_tracking": mode[0],
                                      "flow_blend": mode[1], **(extra or {})})
    model = read_model(model_dir)
    painter = make_painter(model.path, torch.device("cpu"), settings.batch_size, threads, False, generator)
    conv = Converter(model, settings, FaceFinder(model, settings), FacePainter(painter), out, progress=False)
    conv.face_log = []
    items, _ = collect([video], out)
    t, cpu = time.perf_counter(), time.process_time()
    (outcome,) = conv.run(items)
    return time.perf_counter() - t, outcome, conv.face_log, conv.timings, time.process_time() - cpu


def face_regions(logs: list[list], shape: tuple[int, int], n_pairs: int) -> list[np.ndarray]:
    """Per frame pair t: the discs inscribed in every face square of frame t, over all runs."""
    regions = []
    for t in range(n_pairs):
        m = np.zeros(shape, np.uint8)
        for log in logs:
            for _, sq, _ in log[t]:
                x0, y0, side = (float(v) for v in sq)
                cv2.circle(m, (round(x0 + side / 2), round(y0 + side / 2)), round(side / 2), 1, -1)
        regions.append(m.astype(bool))
    return regions


def jitter(log: list, frames: range) -> tuple[float, float]:
    """(68 points, square corner) mean displacement px/frame of the largest-overlap face over `frames`."""
    pts, corners = [], []
    for a, b in zip(frames[:-1], frames[1:]):
        if len(log[a]) != 1 or len(log[b]) != 1:
            continue
        pts.append(float(np.linalg.norm(log[b][0][2] - log[a][0][2], axis=1).mean()))
        corners.append(float(np.linalg.norm(np.asarray(log[b][0][1][:2]) - np.asarray(log[a][0][1][:2]))))
    return (float(np.mean(pts)) if pts else float("nan"), float(np.mean(corners)) if corners else float("nan"))


def cut_faces(log: list, clip) -> tuple[int, int, list[int]]:
    """(frames with a face lost, frames with a face duplicated, track ids seen) from 4 frames before the cut to
    the end of the cut's shot."""
    window = range(max(0, clip.cut - 4), clip.segment("cut").stop)
    lost = sum(len(log[t]) < clip.faces[t] for t in window)
    dup = sum(len(log[t]) > clip.faces[t] for t in window)
    return lost, dup, sorted({i for t in window for i, _, _ in log[t]})


def sharpness(frames: list[np.ndarray], regions: list[np.ndarray]) -> float:
    """Mean variance of the Laplacian of the grey output on the face regions (blur lowers it)."""
    values = [cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_32F)[m].var() for f, m in zip(frames, regions)
              if m.any()]
    return float(np.mean(values)) if values else 0.0


def strip(inputs, outs: dict[str, list[np.ndarray]], log: list, start: int, path: Path, title: str,
          n: int = 8) -> None:
    """Rows: input, then per mode its n consecutive face crops and their frame-to-frame differences x4."""
    x0, y0, side = (float(v) for v in log[start][0][1])
    pad = 0.1 * side
    box = (max(0, round(x0 - pad)), max(0, round(y0 - pad)), round(side + 2 * pad))
    cell = 128

    def crop(f):
        x, y, s = box
        return cv2.resize(f[y:y + s, x:x + s], (cell, cell), interpolation=cv2.INTER_AREA)

    def row(frames):
        return np.concatenate([np.pad(crop(f), ((2, 2), (2, 2), (0, 0)), constant_values=255) for f in frames], 1)

    rows = [row(inputs[start:start + n])]
    for name, out in outs.items():
        seq = out[start:start + n]
        rows.append(row(seq))
        diffs = [np.zeros_like(seq[0])] + [np.clip(4 * np.abs(b.astype(np.int16) - a.astype(np.int16)), 0, 255)
                                           .astype(np.uint8) for a, b in zip(seq[:-1], seq[1:])]
        rows.append(row(diffs))
    labels = ["input"] + [f"{k} {s}" for k in outs for s in ("output", "|change| x4")]
    label_w = 210
    sheet = []
    for text, r in zip(labels, rows):
        lab = np.full((r.shape[0], label_w, 3), 255, np.uint8)
        cv2.putText(lab, text, (6, r.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        sheet.append(np.concatenate([lab, r], 1))
    sheet = np.concatenate(sheet, 0)
    head = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    cv2.putText(head, title, (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    write_image(path, np.concatenate([head, sheet], 0)[..., ::-1].copy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="generator folder or variant name")
    ap.add_argument("--width", type=int, default=None, help="random generator width (default: params.yaml)")
    ap.add_argument("--blocks", type=int, default=None, help="random generator blocks (default: params.yaml)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default=None, help="clip size WxH (default: the clip's 1280x720)")
    ap.add_argument("--strip", type=Path, default=None, help="write the 8-frame before/after strip here")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a convert setting for both runs (e.g. one_euro_beta=0.1); repeatable")
    ap.add_argument("--flow-blend", type=float, default=0.0,
                    help="also run tracked with this flow_blend (post-hoc deflicker) and report its sharpness")
    ap.add_argument("--smoke", action="store_true", help="a short clip, 1 repeat, 1 thread: the code works")
    args = ap.parse_args()
    spec = MotionClipSpec()
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        spec = MotionClipSpec(width=w, height=h)
    if args.smoke:
        args.repeats, args.threads, spec = 1, 1, MotionClipSpec(width=480, height=360).scaled(0.25)
    torch.set_num_threads(args.threads)
    clip = make_clip(spec)
    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        work = Path(tmp)
        model_dir, described = prepare_model(args, work)
        video = write_clip(clip, work / "in" / "clip.mp4")
        generator = load_generator(model_dir)
        best: dict[str, tuple] = {}
        extra = dict(parse_assignment(a) for a in args.set)
        modes = dict(MODES)
        if args.flow_blend > 0:
            modes[f"tracked, flow_blend {args.flow_blend:g}"] = (True, args.flow_blend)
        for r in range(args.repeats):                  # interleaved: load changes hit both alike
            for name, mode in modes.items():
                res = convert_once(video, work / f"{name}{r}".replace(" ", "_").replace(",", ""), model_dir,
                                   generator, mode, args.threads, extra)
                if res[1].status != "converted":
                    raise UserError(f"{name}: the clip was not converted: {res[1].note}")
                if name not in best or res[0] < best[name][0]:
                    best[name] = (*res, work / f"{name}{r}".replace(" ", "_").replace(",", "") / "clip.mp4")
        inputs = read_frames(video)
        facts_in, audio_in = decoded_facts(video), has_audio(video)
        outs = {name: read_frames(b[-1]) for name, b in best.items()}
        logs = {name: b[2] for name, b in best.items()}
        flows = pair_flows(inputs)
        skip = [clip.cut - 1]
        regions = face_regions(list(logs.values()), inputs[0].shape[:2], len(flows))
        sharp = {name: sharpness(o[:-1], regions) for name, o in outs.items()}
        we = {name: (warping_error(o, flows=flows, regions=regions, skip=skip),
                     warping_error(o, flows=flows, skip=skip))
              for name, o in outs.items()}
        floor = (warping_error(inputs, flows=flows, regions=regions, skip=skip),
                 warping_error(inputs, flows=flows, skip=skip))
        facts = {name: (decoded_facts(b[-1]), has_audio(b[-1])) for name, b in best.items()}
        by_segment = {}
        for seg in clip.starts:
            others = [t for t in range(len(flows)) if t not in clip.segment(seg) or t + 1 not in clip.segment(seg)]
            by_segment[seg] = [warping_error(f, flows=flows, regions=regions, skip=set(others) | set(skip))
                               for f in (inputs, *outs.values())]
        if args.strip:
            shown = {k: v for k, v in outs.items() if k in MODES}
            strip(inputs, shown, logs["tracked"], clip.segment("still").start + 4, args.strip,
                  f"8 consecutive frames of the still head (sensor noise only), generator: {described}")

    still = clip.segment("still")
    print(f"face2anime convert of a video on CPU, {args.threads} threads, generator {described}, "
          f"fastest of {args.repeats} interleaved repeats")
    print(f"  clip: {len(clip.frames)} frames {spec.width}x{spec.height} at {spec.fps:g} fps, segments "
          + ", ".join(f"{k} {len(clip.segment(k))}" for k in clip.starts) + f"; input frames decoded: {facts_in[0]}")
    fps_of = {}
    cpu_of = {}
    for name, (wall, outcome, log, timings, cpu, _) in best.items():
        fps_of[name], cpu_of[name] = outcome.faces / wall, outcome.faces / cpu
        j_pts, j_sq = jitter(log, still)
        lost, dup, ids = cut_faces(log, clip)
        (n, fps, w, h), audio = facts[name]
        phases = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        print(f"  {name:15s} {wall:6.2f} s  {outcome.faces} faces  {fps_of[name]:6.1f} faces/s  "
              f"({cpu:.2f} CPU s, {cpu_of[name]:.1f} faces per CPU s)  [s per phase: {phases}]")
        print(f"  {'':15s} warping error faces {we[name][0]:.3f}  whole frame {we[name][1]:.3f} (grey levels); "
              f"sharpness on the faces {sharp[name]:.1f}")
        print(f"  {'':15s} jitter on the still head: 68 points {j_pts:.3f} px/frame, crop square {j_sq:.3f} px/frame")
        print(f"  {'':15s} at the cut: {lost} frame(s) with a face lost, {dup} with a face duplicated, ids {ids}")
        print(f"  {'':15s} output {n} frames {w}x{h} at {fps:g} fps, audio {audio} "
              f"(input {facts_in[0]} {facts_in[2]}x{facts_in[3]} at {facts_in[1]:g} fps, audio {audio_in})")
    print(f"  input's own warping error (floor): faces {floor[0]:.3f}  whole frame {floor[1]:.3f}; "
          f"sharpness {sharpness(inputs[:-1], regions):.1f}")
    print("  warping error on the faces by segment (input floor / " + " / ".join(outs) + "): " + "; ".join(
        f"{k} " + " / ".join(f"{v:.2f}" for v in by_segment[k]) for k in by_segment))
    fb, tr = "frame-by-frame", "tracked"
    print(f"warping error tracked / frame-by-frame: faces {we[tr][0] / we[fb][0]:.2f}x, whole frame "
          f"{we[tr][1] / we[fb][1]:.2f}x; above the input's floor (faces): "
          f"{(we[tr][0] - floor[0]) / max(we[fb][0] - floor[0], 1e-9):.2f}x")
    print(f"speed-up tracked / frame-by-frame (faces per second): {fps_of[tr] / fps_of[fb]:.2f}x; "
          f"per CPU second: {cpu_of[tr] / cpu_of[fb]:.2f}x")


if __name__ == "__main__":
    main()
