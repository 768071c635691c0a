"""Grouped train/val/test split: one shot or one character never spans two splits.

Faces of one shot look alike (same frame content, a few frames apart) and one character looks alike
across shots, so either crossing a split boundary would leak test faces into training. Groups are the
connected components of the graph that links each face to its shot (per video) and to its character
(an empty character links nothing). Whole groups are assigned, in a seeded order, each to the split
that is furthest below its target share of faces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from face2anime.errors import UserError

SPLITS = ("train", "val", "test")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, a: object) -> object:
        self.parent.setdefault(a, a)
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:  # path compression
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb, key=repr)] = min(ra, rb, key=repr)


def face_groups(df: pd.DataFrame) -> np.ndarray:
    """Group id per row (0..G-1, numbered by first appearance): connected over (video, shot) and character."""
    uf = _UnionFind()
    shots = [("shot", str(v), str(s)) for v, s in zip(df["video"], df["shot"], strict=True)]
    chars = ["" if pd.isna(c) else str(c).strip() for c in df["character"]]
    for shot, ch in zip(shots, chars, strict=True):
        uf.find(shot)
        if ch:
            uf.union(shot, ("char", ch))
    roots = [uf.find(s) for s in shots]
    ids: dict[object, int] = {}
    return np.array([ids.setdefault(r, len(ids)) for r in roots], dtype=np.int64)


def assign_splits(groups: np.ndarray, fractions: dict[str, float], seed: int) -> np.ndarray:
    """Split name per row; every split with a positive fraction gets at least one group."""
    fr = np.array([float(fractions[s]) for s in SPLITS])
    if (fr < 0).any() or not np.isclose(fr.sum(), 1.0, atol=1e-6):
        raise UserError(f"split fractions must be >= 0 and sum to 1, got {dict(zip(SPLITS, fr, strict=True))}")
    wanted = [i for i in range(len(SPLITS)) if fr[i] > 0]
    ids, sizes = np.unique(groups, return_counts=True)
    if len(ids) < len(wanted):
        raise UserError(f"only {len(ids)} independent groups (shot/character) for {len(wanted)} splits: "
                        "add footage with more shots or characters, or set a split's fraction to 0")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    # large groups first (seeded order among equal sizes), so the small ones fine-tune the shares
    order = order[np.argsort(-sizes[order], kind="stable")]
    total = sizes.sum()
    counts = np.zeros(len(SPLITS))
    ngroups = np.zeros(len(SPLITS), dtype=int)
    where = np.empty(len(ids), dtype=np.int64)
    remaining = len(ids)
    for g in order:
        empty = [i for i in wanted if ngroups[i] == 0]
        if empty and remaining <= len(empty):
            # as many groups left as empty splits: each empty split must get one
            s = empty[0]
        else:
            deficit = fr * total - counts
            deficit[[i for i in range(len(SPLITS)) if i not in wanted]] = -np.inf
            s = int(np.argmax(deficit))
        where[g] = s
        counts[s] += sizes[g]
        ngroups[s] += 1
        remaining -= 1
    lookup = dict(zip(ids, where, strict=True))
    return np.array([SPLITS[lookup[g]] for g in groups])


def split_summary(groups: np.ndarray, split: np.ndarray) -> dict:
    out: dict = {"faces": int(len(split)), "groups": int(len(np.unique(groups)))}
    for s in SPLITS:
        m = split == s
        out[s] = {"faces": int(m.sum()), "groups": int(len(np.unique(groups[m]))),
                  "fraction": float(m.mean()) if len(split) else 0.0}
    out["largest_group_faces"] = int(np.bincount(groups).max()) if len(groups) else 0
    return out


def read_split_crops(crops_path, split_path, keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                                             pd.DataFrame]:
    """(the crops bundle, its face ids as str, split.csv) for a stage that takes faces by split: missing files,
    arrays and faces unknown to split.csv are one line each."""
    from face2anime.io import read_arrays

    for path in (crops_path, split_path):
        if not path.exists():
            raise UserError(f"{path} not found: run `dvc repro split` first")
    crops = read_arrays(crops_path)
    missing = [k for k in ("face_id", *keys) if k not in crops]
    if missing:
        raise UserError(f"{crops_path} lacks {', '.join(missing)} (see docs/pipeline.md)")
    split = pd.read_csv(split_path, dtype={"face_id": str, "split": str}, keep_default_na=False)
    ids = crops["face_id"].astype(str)
    unknown = int(len(set(ids) - set(split["face_id"])))
    if unknown:
        raise UserError(f"{unknown} faces of {crops_path} are missing from {split_path}: re-run `dvc repro split`")
    return crops, ids, split


def split_rows(face_ids: np.ndarray, split: pd.DataFrame, name: str) -> np.ndarray:
    """Indices of the faces whose split.csv split is `name`, in the bundle's order."""
    wanted = set(split.loc[split["split"] == name, "face_id"])
    return np.flatnonzero([f in wanted for f in face_ids])
