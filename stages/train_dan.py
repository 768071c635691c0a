"""Stage train_dan: train the Deep Alignment Network on the anime crops (stage 1, then stage 2 on top).

Reads `data/anime/crops.npz` + `data/anime/split.csv`; writes `models/dan/`; keeps resumable
checkpoints in `checkpoints/dan/` and training curves in `dvclive/dan/`.
"""

from pathlib import Path

from face2anime.dan.data import load_anime_data
from face2anime.dan.train import save_trained_dan, train_dan
from face2anime.device import resolve_device
from face2anime.runtime import seed_everything, set_threads
from face2anime.settings import load_settings
from face2anime.stage import run_stage

CROPS = Path("data/anime/crops.npz")
SPLIT = Path("data/anime/split.csv")
MODEL_DIR = Path("models/dan")
CHECKPOINT_DIR = Path("checkpoints/dan")
LIVE_DIR = Path("dvclive/dan")


def main() -> str:
    params = load_settings("dan")
    set_threads(params.threads)
    seed_everything(params.seed)
    device = resolve_device(params.device, "dan.device")
    data = load_anime_data(CROPS, SPLIT)
    result = train_dan(data, params, CHECKPOINT_DIR, device, live_dir=LIVE_DIR)
    save_trained_dan(MODEL_DIR, result, params, skipped=data.skipped)
    resumed = f", resumed at stage {result.resumed_from[0]} epoch {result.resumed_from[1]}" if result.resumed_from else ""
    n_skipped = sum(len(v) for v in data.skipped.values())
    val = ", ".join(f"stage {k} {v:.4f}" for k, v in sorted(result.best_val.items()))
    epochs = ", ".join(str(sum(1 for r in result.history if r["stage"] == k)) for k in range(1, params.n_stages + 1))
    return (f"trained on {len(data.splits['train'])} faces (val {len(data.splits['val'])}, skipped {n_skipped}) on "
            f"{device}; epochs per stage {epochs}; best val NME {val}{resumed} -> {MODEL_DIR}")


if __name__ == "__main__":
    run_stage("train_dan", main, outputs=[MODEL_DIR, CHECKPOINT_DIR, LIVE_DIR])
