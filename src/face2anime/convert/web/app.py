"""The page (Gradio): a photo or the webcam in, anime faces out; its queue, its temporary folder, its start.

One temporary folder per server (`face2anime-serve-<pid>-*` in the system's temp folder) holds Gradio's
copies of the uploads, the demo photos offered as examples and the results; Gradio deletes files older than
`serve.cache_max_age_s` every `serve.cache_clean_s` seconds and the folder is removed when the server stops
(Ctrl+C or SIGTERM); a folder left by a server that was killed or crashed goes at the next start. Nothing is written next to the project's data. The queue runs `serve.concurrency`
conversions at once and holds at most `serve.queue_size` waiting requests. The upload box hands the
uploaded file to the engine untouched (`_UploadBox`): Gradio's own image box would open it with PIL first
and answer a file that is not a picture with a bare "Error" instead of the engine's message.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from face2anime.convert.settings import find_params_file
from face2anime.convert.settings import load_settings as load_convert_settings
from face2anime.convert.web.engine import MODES, PageEngine, Variant, find_folder, find_variants
from face2anime.device import resolve_device
from face2anime.errors import UserError
from face2anime.io import _pid_gone
from face2anime.params import ServeParams
from face2anime.photos.files import demo_photos
from face2anime.runtime import set_threads
from face2anime.settings import load_settings as load_section
from face2anime.settings import validate

SECTION = "serve"
FOLDER_PREFIX = "face2anime-serve-"   # + process id + random: the server's temporary folder
API_NAME = "convert"   # Client(url).predict(handle_file(photo), model, mode, overlay, api_name="/convert")
CSS = """
#status { min-height: 2.5em; }
#before img, #after img { object-fit: contain; }
"""


def load_settings(params: Path | str | None = None, overrides: dict[str, Any] | None = None) -> ServeParams:
    """The `serve` section (./params.yaml, else the repository's; or `params`), with `overrides` checked by the
    same model."""
    settings = load_section(SECTION, find_params_file(params, SECTION))
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    return validate(ServeParams, {**settings.model_dump(), **clean}, "options", SECTION) if clean else settings


def _upload_box_class():
    import gradio as gr

    class _UploadBox(gr.Image):
        """gr.Image in the page (same front end: `is_template`), handing over the uploaded file's path as it is."""

        is_template = True

        def preprocess(self, payload):
            if payload is None or payload.path is None:
                return super().preprocess(payload)   # data: URLs (API clients) are decoded by Gradio
            return str(payload.path)

    return _UploadBox


def _generators_table(variants: list[Variant]) -> str:
    rows = [f"| {v.name} | {'-' if v.kid is None else f'{v.kid:.0f}'}"
            f"{'' if v.kid_std is None else f' ± {v.kid_std:.0f}'} | "
            f"{'-' if v.landmark_rmse is None else f'{v.landmark_rmse:.2f}'} |" for v in variants]
    return ("Numbers from `eval_gan` (`metrics/gan/<variant>.json`; lower is better for both). **KID**: distance "
            "of the outputs to held-out anime faces (HED-VGG16 features). **Landmark RMSE**: px (at 112) between "
            "the output's facial points, read by the anime landmark detector, and the photo's.\n\n"
            "| generator | KID | landmark RMSE px |\n|---|---|---|\n" + "\n".join(rows))


def build_app(engine: PageEngine, variants: list[Variant], default_model: str, default_mode: str,
              examples: list[Path], settings: ServeParams):
    """The Blocks of the page (not launched)."""
    import gradio as gr

    upload_box = _upload_box_class()

    def run(photo: str | None, model: str, mode: str, overlay: bool):
        result = engine.convert(photo, model, mode, bool(overlay))
        print(f"face2anime serve: {model} {mode}: {result.message}", flush=True)
        message = result.message if result.ok else f"⚠️ {result.message}"
        after = str(result.after) if isinstance(result.after, Path) else result.after
        return (result.before, after, None if result.download is None else str(result.download), message)

    with gr.Blocks(title="face2anime", delete_cache=(settings.cache_clean_s, settings.cache_max_age_s)) as page:
        gr.Markdown("# face2anime\nEvery face of a photo drawn as an anime face, by the same pipeline as "
                    "`face2anime convert`: dlib finds the faces, each is framed as the generator's training "
                    "photos were, stylised, and pasted back through a feathered mask (or kept as crops).")
        with gr.Row():
            with gr.Column(scale=2):
                photo = upload_box(label="Photo", sources=["upload", "webcam", "clipboard"], type="filepath",
                                   elem_id="photo", height=360)
                model = gr.Dropdown(choices=[(v.label, v.name) for v in variants], value=default_model,
                                    label="Generator", info="KID (lower: closer to anime) and landmark RMSE "
                                    "(lower: the face keeps its shape) from eval_gan", elem_id="model")
                mode = gr.Radio(list(MODES), value=default_mode, label="Output", elem_id="mode",
                                info="paste: the faces drawn back into the photo · crops: one picture per face")
                overlay = gr.Checkbox(False, label="Show the detected faces (framing squares and 68 points) on "
                                      "the 'before' picture", elem_id="overlay")
                button = gr.Button("Convert", variant="primary", elem_id="convert")
                gr.Examples([[str(p)] for p in examples], inputs=[photo], label="Demo photos")
            with gr.Column(scale=3):
                status = gr.Markdown("Upload a photo (or use the webcam, or a demo photo below it) and press "
                                     "**Convert**.", elem_id="status")
                with gr.Row():
                    before = gr.Image(label="Before", type="numpy", format="png", interactive=False,
                                      elem_id="before", height=420, buttons=["download", "fullscreen"])
                    after = gr.Image(label="After", type="numpy", format="png", interactive=False,
                                     elem_id="after", height=420, buttons=["download", "fullscreen"])
                download = gr.File(label="Download", interactive=False, elem_id="download")
                with gr.Accordion("About the generators", open=False):
                    gr.Markdown(_generators_table(variants))
        button.click(run, inputs=[photo, model, mode, overlay], outputs=[before, after, download, status],
                     api_name=API_NAME, concurrency_limit=settings.concurrency)
    return page


def remove_stale_folders() -> list[Path]:
    """Delete the temporary folders of servers that died without cleaning up (killed, crashed): their names
    carry the server's process id."""
    gone = []
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        m = re.match(rf"{FOLDER_PREFIX}(\d+)-", folder.name)
        if m and folder.is_dir() and _pid_gone(int(m.group(1))):
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
    return gone


def _stop_on_sigterm() -> None:
    """SIGTERM ends the server like Ctrl+C, so that the temporary folder is removed."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, handler)


def serve(params: Path | str | None = None, overrides: dict[str, Any] | None = None) -> int:
    """Start the page and serve until stopped (`face2anime serve`). Returns the exit code."""
    settings = load_settings(params, overrides)
    convert_settings = load_convert_settings(find_params_file(params, SECTION))
    variants, refused = find_variants(settings.models, settings.metrics)
    for line in refused:
        print(f"face2anime serve: not offered: {line}", file=sys.stderr)
    if not variants:
        raise UserError(f"no trained generator in {find_folder(settings.models)}: run `dvc repro` to train them, "
                        "or pass --models FOLDER")
    names = [v.name for v in variants]
    default_model = convert_settings.model if convert_settings.model in names else names[0]
    device = resolve_device(settings.device, "serve.device")
    set_threads(convert_settings.threads)

    remove_stale_folders()
    root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
    try:
        os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")   # read by Gradio at import: set before it
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        examples_dir = root / "examples"
        examples_dir.mkdir()
        examples = [Path(shutil.copy2(p.path, examples_dir / p.path.name)) for p in demo_photos()]
        engine = PageEngine(variants, convert_settings, device, settings.max_pixels, settings.models_loaded,
                            root / "results", settings.cache_max_age_s)
        import gradio as gr

        page = build_app(engine, variants, default_model, convert_settings.mode, examples, settings)
        page.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
        _stop_on_sigterm()
        theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                  font_mono=["ui-monospace", "monospace"])   # no web fonts: works offline
        try:
            page.launch(server_name=settings.host, server_port=settings.port, prevent_thread_lock=True, quiet=True,
                        show_error=False, ssr_mode=False, max_file_size=int(settings.max_upload_mb * 1e6),
                        theme=theme, css=CSS)
        except OSError:
            raise UserError(f"cannot listen on {settings.host}:{settings.port} (taken, or not this machine's): "
                            "pass --port or --host") from None
        print(f"face2anime serve: {page.local_url} ({len(variants)} generator{'s' if len(variants) != 1 else ''}: "
              f"{', '.join(names)}; device {device}; uploads in {root}, removed on exit; Ctrl+C stops)",
              flush=True)
        try:
            page.block_thread()
        finally:
            page.close()
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
