"""The shared training plumbing (`face2anime.training`): run identity, the one checkpoint format, model folders."""

from __future__ import annotations

import json

import pytest
import torch

from face2anime.errors import UserError
from face2anime.training import Checkpoint, file_digest, read_model_dir, run_fingerprint, save_model_dir


def test_fingerprint_changes_with_params_inputs_and_cpu_math():
    base = run_fingerprint({"lr": 0.1, "width": 8}, "abc", cpu_math="portable")
    assert base == run_fingerprint({"width": 8, "lr": 0.1}, "abc", cpu_math="portable")   # key order is irrelevant
    assert base != run_fingerprint({"lr": 0.2, "width": 8}, "abc", cpu_math="portable")
    assert base != run_fingerprint({"lr": 0.1, "width": 8}, "abd", cpu_math="portable")
    assert base != run_fingerprint({"lr": 0.1, "width": 8}, "abc", cpu_math="native")


def test_fingerprint_defaults_to_this_process_cpu_math(monkeypatch):
    import face2anime

    for mode in ("portable", "native"):
        monkeypatch.setattr(face2anime, "CPU_MATH", mode)
        assert run_fingerprint({"a": 1}, "x") == run_fingerprint({"a": 1}, "x", cpu_math=mode)


def test_file_digest_sees_names_and_bytes(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.bin").write_bytes(b"1")
    first = file_digest([tmp_path / "d"])
    (tmp_path / "d" / "a.bin").write_bytes(b"2")
    assert file_digest([tmp_path / "d"]) != first
    (tmp_path / "d" / "a.bin").write_bytes(b"1")
    assert file_digest([tmp_path / "d"]) == first
    (tmp_path / "d" / "a.bin").rename(tmp_path / "d" / "b.bin")
    assert file_digest([tmp_path / "d"]) != first


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))


def test_checkpoint_round_trip_and_refusals(tmp_path):
    net = _net(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 1, 5, 5)).sum().backward()
    opt.step()
    ck = Checkpoint(tmp_path / "ck")
    assert ck.load("fp", ["net"]) is None                                # nothing saved yet
    rng = torch.get_rng_state()
    ck.save(3, "fp", [{"epoch": 1, "loss": 0.5}], {"net": net}, {"opt": opt.state_dict(), "rng": {"torch": rng}},
            progress={"stage": 2, "best": 0.25})
    saved = ck.load("fp", ["net"])
    assert saved.epoch == 3 and saved.history == [{"epoch": 1, "loss": 0.5}]
    assert saved.progress == {"stage": 2, "best": 0.25}
    other = _net(1)
    other.load_state_dict(saved.weights["net"])
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    opt2 = torch.optim.Adam(other.parameters(), lr=1e-3)
    opt2.load_state_dict(saved.optim["opt"])
    assert torch.equal(saved.optim["rng"]["torch"], rng)
    assert opt2.state_dict()["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    assert ck.load("other-fingerprint", ["net"]) is None                 # another run: start over, not an error
    # a file that exists but is broken is one line naming it, never a traceback
    (ck.latest / "net.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"net\.safetensors.*delete"):
        ck.load("fp", ["net"])
    (ck.latest / "state.json").write_text("[1, 2]")
    with pytest.raises(UserError, match=r"state\.json"):
        ck.load("fp", ["net"])


def test_a_checkpoint_of_one_cpu_math_mode_is_not_resumed_by_the_other(tmp_path):
    ck = Checkpoint(tmp_path)
    fp = {mode: run_fingerprint({"lr": 0.1}, "inputs", cpu_math=mode) for mode in ("portable", "native")}
    ck.save(0, fp["native"], [], {"net": _net(0)}, {})
    assert ck.load(fp["portable"], ["net"]) is None
    assert ck.load(fp["native"], ["net"]) is not None


def test_model_dir_round_trip_and_errors(tmp_path):
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_model_dir(tmp_path / "m", "w.safetensors", tensors, {"b": 1, "a": 2}, extra={"rec.json": {"z": 1, "y": 2}})
    assert (tmp_path / "m" / "config.json").read_text() == json.dumps({"b": 1, "a": 2}, indent=2) + "\n"
    assert (tmp_path / "m" / "rec.json").read_text() == json.dumps({"y": 2, "z": 1}, indent=2) + "\n"
    config, got = read_model_dir(tmp_path / "m", "w.safetensors", "test model", "re-run it")
    assert config == {"b": 1, "a": 2} and torch.equal(got["w"], tensors["w"])
    with pytest.raises(UserError, match="not found: re-run it"):
        read_model_dir(tmp_path / "nowhere", "w.safetensors", "test model", "re-run it")
    (tmp_path / "m" / "config.json").write_text("{broken")
    with pytest.raises(UserError, match="config.json is unreadable"):
        read_model_dir(tmp_path / "m", "w.safetensors", "test model", "re-run it")
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "w.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(UserError, match="corrupt or not safetensors"):
        read_model_dir(tmp_path / "m", "w.safetensors", "test model", "re-run it")
