"""dlib through the photo_landmarks stage vs dlib on the raw image, scored against HELEN's human 68 points.

Usage: python benchmarks/bench_helen.py [--data ../shared/data/photos68_helen_test] [--limit N] [--smoke]
Prints NME (normalised by the annotation's outer-eye-corner distance, points 36-45) for 68 points and for
the 40-point mapping, and the stage/raw ratio measured in this run. Reads params.yaml (photo_landmarks,
framing) for the detector settings and the mapping.
`--smoke` (run by tests/test_benchmarks.py; needs no HELEN): the demo photos installed packages ship, each
"annotated" with raw dlib's own 68 points plus seeded 2 px noise, through the same scoring; numbers mean nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from face2anime.landmarks.dlib68 import DlibLandmarker
from face2anime.metrics.photo_eval import annotated_photos, evaluate, raw_points68
from face2anime.photos.files import demo_photos
from face2anime.settings import load_params, load_settings


def smoke_set(folder: Path, lm: DlibLandmarker) -> Path:
    """The demo photos with iBUG .pts files of raw dlib's points + seeded noise (a stand-in for HELEN)."""
    rng = np.random.default_rng(0)
    for photo in demo_photos():
        img = folder / f"{photo.photo_id}{photo.path.suffix.lower()}"
        shutil.copyfile(photo.path, img)
        pts = raw_points68(img, lm) + rng.normal(0.0, 2.0, (68, 2))
        img.with_suffix(".pts").write_text("version: 1\nn_points: 68\n{\n"
                                           + "".join(f"{x:.3f} {y:.3f}\n" for x, y in pts) + "}\n")
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/photos68_helen_test")
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (0 = all)")
    ap.add_argument("--smoke", action="store_true", help="demo photos, dlib's own points as truth: no HELEN needed")
    args = ap.parse_args()
    p = load_params("photo_landmarks")
    lm = DlibLandmarker(detector=p["detector"], upsample=int(p["upsample"]), threshold=float(p["det_threshold"]),
                        policy=p["face_policy"], max_side=int(p["max_side"]),
                        predictor_path=p["predictor_path"], cnn_path=p["cnn_path"])
    if not args.smoke:
        return score(args.data, args.limit, lm, p, "HELEN test")
    with tempfile.TemporaryDirectory(prefix="bench_helen_") as tmp:
        return score(smoke_set(Path(tmp), lm), args.limit, lm, p, "demo photos (smoke: dlib's own points + noise)")


def score(data: Path | str, limit: int, lm: DlibLandmarker, p: dict, title: str) -> int:
    """Both readings of the annotated photos in `data` scored and printed (1 when there are none)."""
    pairs = annotated_photos(data)
    if not pairs:
        print(f"no annotated photos in {data}", file=sys.stderr)
        return 1
    if limit:
        pairs = pairs[:limit]
    start = time.perf_counter()
    res = evaluate(pairs, lm, load_settings("framing"), p["mapping"], progress=True)
    r = res.nme(p["mapping"])
    print(f"{title}: {len(pairs)} photos, scored {r['images']} (stage failed {r['stage_failed']}, "
          f"raw failed {r['raw_failed']}), detector {p['detector']}, mapping {p['mapping']}, "
          f"{time.perf_counter() - start:.1f} s")
    print(f"normaliser: {r['normaliser']}")
    print(f"NME 68 points: stage {r['nme68_stage']:.4f}  raw dlib {r['nme68_raw']:.4f}  "
          f"ratio {r['nme68_stage'] / r['nme68_raw']:.3f}")
    print(f"NME 40 points: stage {r['nme40_stage']:.4f}  raw dlib {r['nme40_raw']:.4f}  "
          f"ratio {r['nme40_stage'] / r['nme40_raw']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
