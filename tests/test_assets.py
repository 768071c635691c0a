"""The asset resolver: local path, package copy, cache, and a one-line offline error."""

import pytest

from face2anime import assets
from face2anime.errors import UserError


def test_local_path_wins(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x")
    assert assets.resolve("hysts-hrnetv2", local_path=f) == f


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        assets.resolve("hysts-hrnetv2", local_path=tmp_path / "nope.safetensors", param_hint="x.y")


def test_package_shipped_dlib_model_is_found():
    path = assets.resolve("dlib-shape-68")
    assert path.name == "shape_predictor_68_face_landmarks.dat" and path.stat().st_size > 1_000_000


def test_cache_then_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACE2ANIME_CACHE", str(tmp_path))
    with pytest.raises(UserError) as err:
        assets.resolve("vgg19-imagenet", param_hint="gan.vgg19_weights")
    msg = str(err.value)
    assert "\n" not in msg
    assert "vgg19-dcbbabfb.pth" in msg and "download.pytorch.org" in msg and str(tmp_path) in msg
    cached = tmp_path / "vgg19-imagenet" / "vgg19-dcbbabfb.pth"
    cached.parent.mkdir()
    cached.write_bytes(b"w")
    assert assets.resolve("vgg19-imagenet") == cached
