"""Deep Alignment Network: 40-point anime landmarks (model, training, evaluation, frozen inference).

Modules: `geometry` (similarity fit, warp, heatmap), `model` (the network), `data` (crops, statistics,
augmentation), `train` (resumable two-stage training), `model_dir` (the `models/dan/` folder), `evaluate`
(held-out scores), `inference` (`FrozenDAN`, used by the GAN's landmark loss).
"""
