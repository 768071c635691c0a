"""scripts/measure_spread.py: which stages it re-runs, what it checks out, and how it reads the spread."""

from __future__ import annotations

import pytest

from ci_compare import parse_gates


@pytest.fixture(scope="module")
def spread():
    import measure_spread   # scripts/ is on sys.path (conftest.py), as it is when the script runs

    return measure_spread


def test_trained_stages_follow_the_pipeline_order(spread):
    lock = spread._lock_stages()
    names = [n for n, _ in spread.trained_stages(lock)]
    assert names[:2] == ["train_dan", "eval_dan"]
    assert names.index("eval_gan_reference") > max(names.index(n) for n in names if n.startswith("train_gan@"))
    assert sum(n.startswith("train_gan@") for n in names) == 4 and sum(n.startswith("eval_gan@") for n in names) == 6
    assert names.index("eval_gan_reference") > max(names.index(n) for n in names if n.startswith("train_spade@"))
    assert sum(n.startswith("train_spade@") for n in names) == 2 and "init_spade" in names
    assert all(n.startswith(spread.TRAINED) for n in names)
    # everything else they read comes from untrained stages, checked out of the cache, never re-made
    assert spread.upstream_outputs(lock) == ["data/anime/crops.npz", "data/anime/split.csv", "data/photos",
                                             "data/spade/pairs.npz", "data/style/style.npz",
                                             "data/style/style_test.npz", "metrics/photos.json"]


def test_spread_rows_measure_against_the_committed_value(spread):
    gates = parse_gates({"tolerance": {"default": {"rel": 0.0}, "rules": [
        {"pattern": "metrics/dan.json:*", "rel": 0.03, "abs": 0.0}], "ignore": ["*:*seconds*"]}})
    results = [{"run": {"seed": s, "math": m}, "metrics": {"metrics/dan.json:rmse": v, "metrics/dan.json:seconds": 9.0}}
               for (s, m), v in {(0, "avx2"): 1.50, (0, "native"): 1.52, (1, "avx2"): 1.44, (1, "native"): 1.56}.items()]
    rows = spread.spread_rows(results, {"metrics/dan.json:rmse": 1.5, "metrics/dan.json:seconds": 1.0}, gates)
    assert [r["metric"] for r in rows] == ["metrics/dan.json:rmse"]          # ignored metrics left out
    r = rows[0]
    assert (r["min"], r["max"]) == (1.44, 1.56)
    assert r["rel_spread"] == pytest.approx(0.08) and r["rel_isa_spread"] == pytest.approx(0.08)
    assert r["max_abs_dev"] == pytest.approx(0.06) and r["runs_within"] == 2   # seed 1 is outside 1.5 +- 0.045
    assert r["same_seed_dev"] == pytest.approx(0.02) and r["within_tolerance"]  # seed 0 on the other ISA
    rule = spread.suggest_rules(rows)[0]
    assert "metrics/dan.json:rmse*" in rule and "rel: 0.02," in rule         # 1.5 x 1.33 %
