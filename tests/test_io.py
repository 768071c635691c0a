"""Atomic writes leave nothing half-written behind."""

import pytest

from face2anime.io import atomic_path, write_json


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert target.read_text().strip().startswith("{")


def test_directory_output_replaced_whole(tmp_path):
    target = tmp_path / "frames"
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "a.txt").write_text("1")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
