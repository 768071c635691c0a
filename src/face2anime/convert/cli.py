"""The `face2anime` command: `convert` pictures and videos, `export` or `serve` a generator, `generate` anime faces.

`convert` stylises the faces of pictures, folders and videos; `export` writes a generator as ONNX /
TorchScript; `generate` paints new anime faces from sampled layouts with the SPADE painter; `serve` starts
a web page converting uploads and webcam photos through convert's pipeline (docs/web.md).

Defaults come from the `convert` (`generate`, `serve`) section of params.yaml (--params; ./params.yaml, else the
repository's). Problems the user can fix are one line on stderr and exit 1, never a traceback; `convert`
exits 1 when nothing could be converted. See docs/convert.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from face2anime.convert.settings import AUDIO, MODES, NO_FACE, load_settings, parse_assignment
from face2anime.errors import UserError

PROG = "face2anime"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{convert,export,generate,serve}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="generator folder or variant name (default: convert.model)")
    common.add_argument("--params", type=Path, help="params file with a convert section "
                                                    "(default: ./params.yaml, else the repository's)")
    common.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="override any convert setting, e.g. --set feather=0.2 (repeatable)")

    conv = sub.add_parser("convert", parents=[common], help="stylise the faces of pictures, folders and videos",
                          description="Stylise every face of pictures, folders (recursive) and videos.")
    conv.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="picture, folder or video")
    conv.add_argument("-o", "--out", required=True, help="output folder")   # a str: -o "" is refused, not "."
    conv.add_argument("--overwrite", action="store_true",
                      help="replace existing files convert did not write (never folders)")
    conv.add_argument("--mode", choices=MODES, help="paste: faces back into the picture | crops: one file per face")
    conv.add_argument("--no-face", dest="no_face", choices=NO_FACE, help="pictures without a face: copy | skip")
    conv.add_argument("--batch-size", dest="batch_size", type=int, help="faces per generator call")
    conv.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    conv.add_argument("--audio", choices=AUDIO, help="videos: copy the audio track | drop it")
    conv.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    exp = sub.add_parser("export", parents=[common], help="write a generator as ONNX or TorchScript",
                         description="Write a trained generator as one ONNX or TorchScript file (dynamic batch).")
    exp.add_argument("--format", dest="fmt", choices=("onnx", "torchscript"), required=True)
    exp.add_argument("-o", "--out", type=Path, required=True, help="output file (*.onnx; *.pt for torchscript)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing output file")

    gen = sub.add_parser("generate", help="paint new anime faces from sampled layouts (SPADE painter)",
                         description="Paint N new anime faces from layouts sampled from the anime training faces' "
                                     "shapes and colours: DIR/face_0000.png ... and DIR/sheet.png.")
    gen.add_argument("-n", dest="n", type=int, required=True, help="how many faces")
    gen.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    gen.add_argument("--model", help="painter folder or variant name (default: generate.model)")
    gen.add_argument("--seed", type=int, help="the same seed and -n give the same bytes (default: generate.seed)")
    gen.add_argument("--layouts", help="prepare_spade's layouts file (default: generate.layouts)")
    gen.add_argument("--batch-size", dest="batch_size", type=int, help="faces per painter call")
    gen.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    gen.add_argument("--params", type=Path, help="params file with a generate section "
                                                 "(default: ./params.yaml, else the repository's)")
    gen.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                     help="override any generate setting, e.g. --set palette_jitter=0 (repeatable)")

    srv = sub.add_parser("serve", help="a web page: a photo or the webcam in, anime faces out (docs/web.md)",
                         description="Serve a Gradio page on this machine that converts uploaded or webcam photos "
                                     "with every trained generator, through the same pipeline as convert.")
    srv.add_argument("--host", help="interface to listen on (default: serve.host, 127.0.0.1)")
    srv.add_argument("--port", type=int, help="TCP port (default: serve.port, 7860)")
    srv.add_argument("--device", help="auto | cpu | cuda | cuda:N (default: serve.device)")
    srv.add_argument("--models", help="folder of generator folders offered in the picker (default: serve.models)")
    srv.add_argument("--params", type=Path, help="params file with serve and convert sections "
                                                 "(default: ./params.yaml, else the repository's)")
    srv.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                     help="override any serve setting, e.g. --set concurrency=4 (repeatable)")
    return parser


def _overrides(args: argparse.Namespace, keys: tuple[str, ...]) -> dict:
    values = dict(parse_assignment(a) for a in args.assignments)
    values.update({k: getattr(args, k) for k in keys if getattr(args, k, None) is not None})
    return values


def run_convert(args: argparse.Namespace) -> int:
    from face2anime.convert.run import convert_paths

    overrides = _overrides(args, ("model", "mode", "no_face", "batch_size", "device", "audio"))
    report = convert_paths(args.inputs, args.out, params=args.params, progress=not args.quiet,
                           overwrite=args.overwrite, **overrides)
    for line in report.listing():
        print(line)
    print(f"{PROG} convert: {report.summary()}")
    return report.exit_code


def run_export(args: argparse.Namespace) -> int:
    from face2anime.convert.export import export_generator
    from face2anime.convert.model import read_model

    settings = load_settings(args.params, _overrides(args, ("model",)))
    model = read_model(settings.model)
    out = export_generator(model, args.fmt, args.out, opset=settings.onnx_opset, overwrite=args.overwrite)
    size = model.image_size
    what = (f"input conditioning (batch, 8, {size}, {size}) in [-1, 1] (docs/convert.md: Export)"
            if model.painter is not None else f"input image (batch, 3, {size}, {size}) RGB in [-1, 1]")
    print(f"{PROG} export: {model.name} -> {out} ({args.fmt}, {what}, {out.stat().st_size / 1e6:.2f} MB)")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from face2anime.convert.generate import generate

    result = generate(args.n, args.out, params=args.params,
                      **_overrides(args, ("model", "seed", "layouts", "batch_size", "device")))
    print(f"{PROG} generate: {result.summary()}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from face2anime.convert.web.app import serve

    return serve(args.params, _overrides(args, ("host", "port", "device", "models")))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"convert": run_convert, "export": run_export, "generate": run_generate,
                "serve": run_serve}[args.command](args)
    except UserError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted; finished outputs are whole, unfinished ones not written",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
