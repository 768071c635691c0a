"""The photo train/test split: by source photo, so that no photo's views span both sides."""

from __future__ import annotations

import numpy as np


def split_by_photo(photo_ids: list[str], test_fraction: float, seed: int) -> dict[str, str]:
    """'train'/'test' per source photo (all views of a photo share its side); >= 1 each side from 2 photos."""
    ids = sorted(set(photo_ids))
    n = len(ids)
    if n == 0:
        return {}
    if n == 1:
        return {ids[0]: "train"}
    n_test = int(np.clip(round(test_fraction * n), 1, n - 1))
    perm = np.random.default_rng(seed).permutation(n)
    test = {ids[i] for i in perm[:n_test]}
    return {i: ("test" if i in test else "train") for i in ids}
