"""The one grayscale function, the one uint8 <-> tensor converter pair and the one photo-crops reader (data/)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from face2anime.errors import UserError
from face2anime.imaging.images import LUMA, to_gray
from face2anime.imaging.tensors import luma, to_tensor, to_uint8
from face2anime.io import write_arrays
from face2anime.photos.read import load_photo_crops

RNG = np.random.default_rng(3)


def test_to_gray_is_opencv_for_one_image_a_batch_and_bgr():
    batch = RNG.integers(0, 256, (3, 2, 17, 9, 3), dtype=np.uint8)
    want = np.stack([[cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in row] for row in batch])
    assert to_gray(batch[0, 0]).tobytes() == want[0, 0].tobytes()
    assert to_gray(batch).shape == (3, 2, 17, 9) and to_gray(batch).tobytes() == want.tobytes()
    assert to_gray(batch[0, 1][..., ::-1].copy(), bgr=True).tobytes() == want[0, 1].tobytes()
    assert to_gray(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)).tolist() == [[76, 150, 29]]


def test_to_tensor_contract_and_round_trip():
    images = RNG.integers(0, 256, (4, 12, 10, 3), dtype=np.uint8)
    x = to_tensor(images)
    assert x.shape == (4, 3, 12, 10) and x.dtype == torch.float32 and x.is_contiguous()
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x[1, 2], torch.from_numpy(images[1, ..., 2]).float() / 127.5 - 1.0)   # RGB order kept
    assert np.array_equal(to_uint8(x), images)
    cl = to_tensor(images, memory_format=torch.channels_last)
    assert torch.equal(cl, x) and cl.is_contiguous(memory_format=torch.channels_last) and not cl.is_contiguous()
    gray = to_tensor(images[..., 0])                                 # (N, H, W) -> 3 equal channels
    assert gray.shape == (4, 3, 12, 10) and torch.equal(gray[:, 0], gray[:, 2]) and torch.equal(gray[:, 0], x[:, 0])
    assert to_tensor(images, 6).shape == (4, 3, 6, 6) and to_tensor(images[:, :10], 10).shape == (4, 3, 10, 10)


def test_to_uint8_clips_and_rounds_half_to_even():
    x = torch.tensor([-3.0, -1.0, 1.0 / 255.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 128, 255]         # 128.0 exactly; out of range clipped


def test_luma_uses_the_shared_weights():
    x = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)              # pure red
    assert luma(x).item() == pytest.approx(LUMA[0])
    assert luma(to_tensor(np.full((1, 2, 2, 3), 255, np.uint8))).flatten().tolist() == pytest.approx([1.0] * 4)


def _crops(root, ids, statuses, splits, npz_ids=None):
    n = len(npz_ids if npz_ids is not None else [i for i, s in zip(ids, statuses) if s == "ok"])
    write_arrays(root / "crops.npz", photo_id=np.array(npz_ids if npz_ids is not None else
                                                       [i for i, s in zip(ids, statuses) if s == "ok"]),
                 color112=RNG.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8),
                 points112=RNG.random((n, 40, 2)).astype(np.float32) * 100)
    pd.DataFrame({"photo_id": ids, "status": statuses, "split": splits}).to_csv(root / "photos.csv", index=False)
    return root / "crops.npz", root / "photos.csv"


def test_photo_crops_are_the_ok_rows_of_the_split(tmp_path):
    npz, csv = _crops(tmp_path, ["007_v00", "a_v00", "skip", "b_v00"], ["ok", "ok", "skipped", "ok"],
                      ["test", "train", "", "test"])
    crops = load_photo_crops(npz, csv, "test")
    assert crops.photo_ids.tolist() == ["007_v00", "b_v00"]            # ids stay strings, leading zeros kept
    assert crops.color.dtype == np.uint8 and crops.color.shape == (2, 112, 112, 3)
    assert crops.targets.dtype == np.float64 and crops.targets.shape == (2, 40, 2)


@pytest.mark.parametrize("case, words", [
    ("mismatch", "do not match"), ("no_split", "no photos with split"), ("missing", "not found"),
    ("corrupt", "unreadable"), ("no_column", "lack"),
])
def test_photo_crops_refuse_a_bad_pair_in_one_line(tmp_path, case, words):
    npz, csv = _crops(tmp_path, ["a", "b"], ["ok", "ok"], ["train", "test"],
                      npz_ids=["b", "a"] if case == "mismatch" else None)
    if case == "missing":
        csv.unlink()
    if case == "corrupt":
        npz.write_bytes(b"PK\x03\x04 not a zip")
    if case == "no_column":
        pd.DataFrame({"photo_id": ["a", "b"], "status": "ok"}).to_csv(csv, index=False)
    with pytest.raises(UserError) as err:
        load_photo_crops(npz, csv, "val" if case == "no_split" else "test")
    assert words in str(err.value) and "\n" not in str(err.value)
