"""Generator/discriminator shapes and ranges, and the saved-generator round trip."""

import numpy as np
import pytest
import torch

from face2anime.errors import UserError
from face2anime.gan.models import (build_discriminator, build_generator, generator_record, generator_settings,
                                   load_generator, save_generator)
from face2anime.params import (AnimeDiscriminatorParams, AnimeGeneratorParams, CartoonDiscriminatorParams,
                               CartoonGeneratorParams)

NETS = {"cartoongan": (CartoonGeneratorParams(width=4, blocks=2, upsample="transposed"),
                       CartoonDiscriminatorParams(width=4)),
        "animegan": (AnimeGeneratorParams(width=4, blocks=2, expansion=2),
                     AnimeDiscriminatorParams(width=4, stages=3, spectral_norm=True))}


@pytest.mark.parametrize("model", ["cartoongan", "animegan"])
def test_generator_and_discriminator_shapes(model):
    torch.manual_seed(0)
    G, D = build_generator(NETS[model][0], 112), build_discriminator(NETS[model][1])
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    d = D(y)
    side = 112 // 4 if model == "cartoongan" else 112 // 8
    assert d.shape == (2, 1, side, side)


def test_save_and_load_generator(tmp_path):
    torch.manual_seed(0)
    g = AnimeGeneratorParams(width=4, blocks=1, expansion=2)
    G = build_generator(g, 112).eval()
    save_generator(tmp_path / "g", G, {"generator": generator_record("animegan", g), "variant": "animegan-base"})
    H = load_generator(tmp_path / "g")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G(x), H(x))
    assert not any(p.requires_grad for p in H.parameters())
    with pytest.raises(UserError, match="not found"):
        load_generator(tmp_path / "missing")
    assert generator_settings({"model": "animegan", "width": 4, "blocks": 1, "expansion": 2}, "c.json") == g
    with pytest.raises(UserError, match=r"c.json: generator.model = 'cyclegan': must be one of cartoongan, animegan"):
        generator_settings({"model": "cyclegan", "width": 4, "blocks": 1}, "c.json")
    with pytest.raises(UserError, match=r"c.json: generator.width = 0"):
        generator_settings({"model": "animegan", "width": 0, "blocks": 1, "expansion": 2}, "c.json")


def _photo(size=112):
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut()[:300, 100:400], (size, size), interpolation=cv2.INTER_AREA)
    return img, torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.mark.parametrize("seed", [0, 1])
def test_resize_conv_has_no_checkerboard_at_init_and_transposed_conv_has(seed):
    """At initialisation, resize-conv output carries about as little period-2 power as the photo itself;
    the paper's transposed convs put several percent of the output's power there."""
    from face2anime.metrics.gan import checkerboard_power

    img, x = _photo()
    photo = checkerboard_power(img[None])
    power = {}
    for up in ("resize", "transposed"):
        torch.manual_seed(seed)
        G = build_generator(CartoonGeneratorParams(width=8, blocks=2, upsample=up), 112).eval()
        with torch.no_grad():
            out = ((G(x).clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
        power[up] = checkerboard_power(out)
    assert photo < 1e-3 and power["resize"] < 1e-3
    assert power["transposed"] > 1e-2 > 10 * power["resize"]


def test_checkerboard_power_finds_a_period_two_pattern():
    from face2anime.metrics.gan import checkerboard_power

    img, _ = _photo(32)
    board = (np.indices((32, 32)).sum(axis=0) % 2)[..., None] * 40.0
    assert checkerboard_power(img[None]) < 1e-2
    assert checkerboard_power(img[None] + board) > 0.05
    assert checkerboard_power(board[None]) == pytest.approx(1.0)
