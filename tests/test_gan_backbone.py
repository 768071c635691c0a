"""The offline VGG16 (HED) backbone: h5 layout -> torch shapes, and the converted weights still detect edges."""

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from face2anime import assets
from face2anime.errors import UserError
from face2anime.gan.backbone import layer_names, load_backbone


def test_hed_vgg16_shapes_and_kernel_layout():
    bb = load_backbone("hed-vgg16", "conv4_3")
    assert not any(p.requires_grad for p in bb.parameters()) and not bb.training
    convs = [m for m in bb.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and bb.out_channels == 512
    assert tuple(convs[0].weight.shape) == (64, 3, 3, 3) and tuple(convs[-1].weight.shape) == (512, 512, 3, 3)
    with h5py.File(assets.resolve("hed-vgg16"), "r") as f:
        k = np.asarray(f["block3/layers/conv2d_1/vars/0"])         # conv3_2, stored HWIO
    assert np.array_equal(convs[5].weight.numpy(), k.transpose(3, 2, 0, 1))
    with torch.no_grad():
        out = bb(torch.zeros(2, 3, 112, 112))
    assert out.shape == (2, 512, 14, 14)


def test_converted_hed_still_finds_edges():
    """Run the full HED (VGG16 + its side outputs from the same file): a square's outline must light up."""
    bb = load_backbone("hed-vgg16", "conv5_3")
    path = assets.resolve("hed-vgg16")
    with h5py.File(path, "r") as f:
        dsn = [(torch.from_numpy(np.asarray(f[f"dsn{i}/vars/0"])).permute(3, 2, 0, 1),
                torch.from_numpy(np.asarray(f[f"dsn{i}/vars/1"]))) for i in range(1, 6)]
        fuse = (torch.from_numpy(np.asarray(f["fuse/vars/0"])).permute(3, 2, 0, 1),
                torch.from_numpy(np.asarray(f["fuse/vars/1"])))
    img = torch.full((1, 3, 64, 64), -0.6)
    img[:, :, 20:44, 20:44] = 0.8
    taps = {bb.conv_index[n] + 1 for n in ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")}
    sides, x = [], bb.normalise(img)
    with torch.no_grad():
        for i, m in enumerate(bb.features):
            x = m(x)
            if i in taps:
                w, b = dsn[len(sides)]
                sides.append(F.interpolate(F.conv2d(x, w, b), size=(64, 64), mode="bilinear", align_corners=False))
        edges = torch.sigmoid(F.conv2d(torch.cat(sides, 1), *fuse))[0, 0]
    border = torch.zeros(64, 64, dtype=torch.bool)
    border[18:46, 18:46] = True
    border[22:42, 22:42] = False
    flat = torch.zeros(64, 64, dtype=torch.bool)
    flat[26:38, 26:38] = True
    flat[:8, :8] = True
    assert edges[border].mean() > 0.3 and edges[flat].mean() < 0.1


def test_layer_names_and_errors(tmp_path, monkeypatch):
    assert layer_names("vgg19")[-1] == "conv5_4" and "conv4_4" in layer_names("vgg19")
    with pytest.raises(UserError, match="no layer"):
        load_backbone("hed-vgg16", "conv4_4")
    monkeypatch.setenv("FACE2ANIME_CACHE", str(tmp_path))
    with pytest.raises(UserError) as err:                     # offline: the resolver's one-line message
        load_backbone("vgg19", "conv4_4")
    assert "\n" not in str(err.value) and "vgg19-dcbbabfb.pth" in str(err.value)


def test_vgg19_from_a_local_torchvision_style_file(tmp_path):
    torch.manual_seed(0)
    state, index, cin = {}, 0, 3
    for b, block in enumerate(((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)):
        index += b > 0
        for c in block:
            state[f"features.{index}.weight"] = torch.randn(c, cin, 3, 3) * 0.01
            state[f"features.{index}.bias"] = torch.zeros(c)
            cin, index = c, index + 2
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    bb = load_backbone("vgg19", "conv4_4", weights=path)
    assert torch.equal(bb.features[bb.conv_index["conv4_4"]].weight, state["features.25.weight"])
    with torch.no_grad():
        assert bb(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)
