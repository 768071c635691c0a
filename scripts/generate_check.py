#!/usr/bin/env python
"""Try `face2anime generate` as a user would and measure how anime its new faces are (KID), next to a floor.

Runs the installed `face2anime generate -n N` into a temporary folder and checks what it says and writes
(N face files + the sheet, one summary line, no traceback, the same bytes on a second run), then embeds the
faces with the evaluation's feature network (`eval_gan.feature_net`, global average pooled, as
`eval_gan_reference` / `eval_gan` do) and reports the project's KID (`metrics.gan.kid`, `eval_gan.kid`
subsets and seed) against the held-out anime crops (data/style/style_test.npz 'color', `eval_gan.max_anime`
subset). The floor is what N real anime faces score against the same held-out set: a seeded N-subset of the
anime TRAINING crops (data/style/style.npz 'color'); KID cannot be expected below it (the unbiased
estimate scatters around 0 there, so it can be negative). For scale, eval_gan's KID of the same painter on
converted held-out photos is in metrics/gan/<variant>.json (style.kid; photos themselves: kid_photo_baseline).
By hand, from the repository root: `.venv/bin/python scripts/generate_check.py [--model VARIANT] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from face2anime.device import resolve_device
from face2anime.gan.backbone import load_backbone
from face2anime.io import read_arrays, write_json
from face2anime.metrics.features import embed
from face2anime.metrics.gan import kid
from face2anime.metrics.gan_eval import load_anime
from face2anime.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
STYLE_TEST = ROOT / "data/style/style_test.npz"
STYLE_TRAIN = ROOT / "data/style/style.npz"


def run(cmd: list[str]) -> tuple[int, str]:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    print(out.rstrip())
    return proc.returncode, out


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.png")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=64, help="faces to generate (and the floor's anime subset size)")
    ap.add_argument("--model", default=None, help="painter variant or folder (default: params generate.model)")
    ap.add_argument("--seed", type=int, default=None, help="generate's seed (default: params generate.seed)")
    ap.add_argument("--json", type=Path, default=None, help="also write both numbers here")
    args = ap.parse_args(argv)
    exe = shutil.which("face2anime") or str(Path(sys.executable).parent / "face2anime")
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            problems.append(what)

    opts = [*(["--model", args.model] if args.model else []), *(["--seed", str(args.seed)] if args.seed is not None
                                                                 else [])]
    with tempfile.TemporaryDirectory(prefix="face2anime-generate-") as tmp:
        tmp = Path(tmp)
        rc, text = run([exe, "generate", "-n", str(args.n), "-o", str(tmp / "a"), *opts])
        check(rc == 0 and "Traceback" not in text, "generate exits 0 without a traceback")
        check(len(text.strip().splitlines()) == 1, "one summary line")
        files = sorted((tmp / "a").glob("face_*.png"))
        check(len(files) == args.n and (tmp / "a" / "sheet.png").is_file(), f"{len(files)} face files + sheet.png")
        if problems:
            print(f"generate_check: FAIL: {'; '.join(problems)}")
            return 1
        rc, _ = run([exe, "generate", "-n", str(args.n), "-o", str(tmp / "b"), *opts])
        check(rc == 0 and digest(tmp / "a") == digest(tmp / "b"), "a second run writes the same bytes")
        faces = np.stack([cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1] for f in files])

    p = load_settings("eval_gan", ROOT / "params.yaml")
    device = resolve_device(p.device, "eval_gan.device")
    fn = p.feature_net
    net = load_backbone(fn.name, fn.layer, weights=fn.weights, device=device)
    heldout = load_anime(STYLE_TEST, p.max_anime, p.seed)
    train = read_arrays(STYLE_TRAIN)["color"]
    if len(train) < args.n:
        print(f"generate_check: FAIL: {STYLE_TRAIN} holds {len(train)} anime faces, fewer than -n {args.n}")
        return 1
    floor_set = train[np.sort(np.random.default_rng(p.seed).choice(len(train), args.n, replace=False))]
    pooled = {name: embed(net, images, p.batch_size, device)[0]
              for name, images in (("heldout", heldout), ("generated", faces), ("floor", floor_set))}
    gen = kid(pooled["generated"], pooled["heldout"], p.kid.subsets, p.kid.subset_size, p.seed)
    floor = kid(pooled["floor"], pooled["heldout"], p.kid.subsets, p.kid.subset_size, p.seed)
    feature_net = f"{fn.name} {fn.layer} (ReLU), global average pooled"
    result = {"model": args.model or load_settings("generate", ROOT / "params.yaml").model, "n": args.n,
              "heldout_anime": len(heldout), "feature_net": feature_net,
              "kid_generated": gen.as_dict(), "kid_floor_anime_train": floor.as_dict(),
              "gap_to_floor": gen.mean - floor.mean}
    if args.json:
        write_json(args.json, result)
    print(f"generate_check: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)}; KID of {args.n} generated "
          f"faces vs {len(heldout)} held-out anime {gen.mean:.4g} +- {gen.std:.3g}, floor ({args.n} anime train "
          f"crops) {floor.mean:.4g} +- {floor.std:.3g} (KID is unbiased: ~0 or below = indistinguishable) "
          f"[{feature_net}, {gen.subsets} subsets of {gen.subset_size}]{' -> ' + str(args.json) if args.json else ''}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
