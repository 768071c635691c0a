"""Generator/discriminator shapes and ranges, and the saved-generator round trip."""

import pytest
import torch

from face2anime.errors import UserError
from face2anime.gan.models import (build_discriminator, build_generator, load_generator, save_generator)


@pytest.mark.parametrize("model", ["cartoongan", "animegan"])
def test_generator_and_discriminator_shapes(model):
    torch.manual_seed(0)
    G = build_generator({"model": model, "width": 4, "blocks": 2})
    D = build_discriminator({"model": model, "width": 4, "stages": 3, "spectral_norm": model == "animegan"})
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    d = D(y)
    side = 112 // 4 if model == "cartoongan" else 112 // 8
    assert d.shape == (2, 1, side, side)


def test_save_and_load_generator(tmp_path):
    torch.manual_seed(0)
    cfg = {"model": "animegan", "width": 4, "blocks": 1, "expansion": 2}
    G = build_generator(cfg).eval()
    save_generator(tmp_path / "g", G, {"generator": cfg, "variant": "animegan-base"})
    H = load_generator(tmp_path / "g")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(x), H(x))
    assert not any(p.requires_grad for p in H.parameters())
    with pytest.raises(UserError, match="not found"):
        load_generator(tmp_path / "missing")
    with pytest.raises(UserError, match="unknown GAN model"):
        build_generator({"model": "cyclegan", "width": 4, "blocks": 1})
