"""Stage eval_dan: score the trained DAN on the held-out test crops (cropped as at inference time).

Writes `metrics/dan.json` (per stage: RMSE, outliers, NME, CED AUC, failure rate, per-region errors),
`reports/dan/ced_stage*.csv`, `reports/dan/per_landmark_stage*.csv` and `reports/dan/worst.png`.
"""

from pathlib import Path

from face2anime.dan.data import load_anime_data
from face2anime.dan.evaluate import evaluate, worst_sheet
from face2anime.dan.model_dir import load_dan
from face2anime.device import resolve_device
from face2anime.io import write_image, write_json, write_table
from face2anime.runtime import set_threads
from face2anime.settings import load_settings
from face2anime.stage import run_stage
from face2anime.viz.sheets import rgb_to_bgr

CROPS = Path("data/anime/crops.npz")
SPLIT = Path("data/anime/split.csv")
MODEL_DIR = Path("models/dan")
METRICS = Path("metrics/dan.json")
REPORTS = Path("reports/dan")


def main() -> str:
    settings = load_settings("eval_dan")
    set_threads(settings.threads)
    device = resolve_device(settings.device, "eval_dan.device")
    data = load_anime_data(CROPS, SPLIT, require=("test",))
    test = data.splits["test"]
    model, config = load_dan(MODEL_DIR, device)
    ev = evaluate(model, test, device, settings)

    final = ev.metrics["final"]
    targets = settings.targets.model_dump()
    ev.metrics["targets"] = targets
    ev.metrics["meets_targets"] = {k: bool(final[k] <= v) for k, v in targets.items()}
    stages = sorted(ev.ced)
    if len(stages) > 1:
        ev.metrics["stage2_not_worse_than_stage1"] = bool(ev.metrics["stage2"]["rmse_px"] <= ev.metrics["stage1"]["rmse_px"])
    ev.metrics["skipped"] = {reason: {"count": len(ids), "face_ids": ids} for reason, ids in data.skipped.items()}
    ev.metrics["model"] = {"width": config["architecture"]["width"], "stages_trained": config["stages_trained"]}
    write_json(METRICS, ev.metrics)
    for name in stages:
        write_table(REPORTS / f"ced_{name}.csv", ev.ced[name])
        write_table(REPORTS / f"per_landmark_{name}.csv", ev.per_landmark[name])
    sheet = worst_sheet(test, ev.predictions[ev.metrics["final_stage"]], settings.worst_n)
    write_image(REPORTS / "worst.png", rgb_to_bgr(sheet))
    per_stage = "; ".join(f"{n}: RMSE {ev.metrics[n]['rmse_px']:.2f} px, outliers {ev.metrics[n]['outlier_points_pct']:.2f} %, "
                          f"images with outlier {ev.metrics[n]['images_with_outlier_pct']:.1f} %" for n in stages)
    met = "all targets met" if all(ev.metrics["meets_targets"].values()) else "targets missed: " + ", ".join(
        k for k, ok in ev.metrics["meets_targets"].items() if not ok)
    return f"{len(test)} test faces; {per_stage}; {met} -> {METRICS}"


if __name__ == "__main__":
    run_stage("eval_dan", main, outputs=[METRICS, REPORTS / "worst.png"])
