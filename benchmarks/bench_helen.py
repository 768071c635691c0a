"""dlib through the photo_landmarks stage vs dlib on the raw image, scored against HELEN's human 68 points.

Usage: python benchmarks/bench_helen.py [--data ../shared/data/photos68_helen_test] [--limit N]
Prints NME (normalised by the annotation's outer-eye-corner distance, points 36-45) for 68 points and for
the 40-point mapping, and the stage/raw ratio measured in this run. Reads params.yaml (photo_landmarks,
framing) for the detector settings and the mapping.
"""

from __future__ import annotations

import argparse
import sys
import time

from face2anime.landmarks.dlib68 import DlibLandmarker
from face2anime.metrics.photo_eval import annotated_photos, evaluate
from face2anime.params import load_params, load_settings


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/photos68_helen_test")
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (0 = all)")
    args = ap.parse_args()
    pairs = annotated_photos(args.data)
    if not pairs:
        print(f"no annotated photos in {args.data}", file=sys.stderr)
        return 1
    if args.limit:
        pairs = pairs[: args.limit]
    p = load_params("photo_landmarks")
    lm = DlibLandmarker(detector=p["detector"], upsample=int(p["upsample"]), threshold=float(p["det_threshold"]),
                        policy=p["face_policy"], max_side=int(p["max_side"]),
                        predictor_path=p["predictor_path"], cnn_path=p["cnn_path"])
    start = time.perf_counter()
    res = evaluate(pairs, lm, load_settings("framing"), p["mapping"], progress=True)
    r = res.nme(p["mapping"])
    print(f"HELEN test: {len(pairs)} photos, scored {r['images']} (stage failed {r['stage_failed']}, "
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
