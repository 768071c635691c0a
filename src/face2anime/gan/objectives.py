"""Each GAN model owns its losses and its update order; the training loop (`gan/train.py`) stays generic.

A model here is the generator, the discriminator, their optimizers and the loss terms that tie them to
the data (as in pytorch-CycleGAN-and-pix2pix's `models/`). Two phases:

- `init`: the generator alone learns to reconstruct the photo (content L1 on backbone features + pixel L1).
  Content features alone cannot do it: deep VGG features are nearly colour-blind and cheap for
  checkerboards, so a content-only init leaves outputs no closer to the photo than flat gray.
- `gan`: one discriminator step, then one generator step with the model's weighted terms (+ the landmark
  term when the variant has it).

Every step returns its *weighted* G terms, so the loop can log each term's share of the G loss.

Under DDP (`gan/distributed.py`) the training forwards go through `g_train` / `d_train` (the wrappers that
average gradients); everything else (samples, checkpoints, the G step's pass through the frozen D) uses
`G` and `D` themselves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from face2anime.gan import losses as L
from face2anime.gan.models import build_discriminator, build_generator
from face2anime.imaging.tensors import luma
from face2anime.params import AnimeGanParams, CartoonGanParams, GanCommonParams, SpadeGanParams

@dataclass
class Batch:
    """One step's tensors, on the training device. Anime fields are None in the init phase."""

    photo: torch.Tensor                       # (B, 3, S, S) RGB in [-1, 1]; spade: the anime face itself
    photo_feat: torch.Tensor                  # backbone features of `photo` (constant: computed once)
    points: torch.Tensor                      # (B, 40, 2) the photo's target points (px at 112)
    anime: torch.Tensor | None = None         # colour anime faces: D's "real"
    anime_smooth: torch.Tensor | None = None  # edge-smoothed anime (colour): D's "fake" in both models
    anime_gray: torch.Tensor | None = None    # grayscale anime, 3 channels (AnimeGAN: D's "fake", gram target)
    anime_gray_feat: torch.Tensor | None = None   # backbone features of `anime_gray` (constant)
    cond: torch.Tensor | None = None          # spade: the conditioning of `photo` (B, C, S, S), G's input


@dataclass
class StepResult:
    g_terms: dict[str, torch.Tensor]          # weighted G terms (their sum is the G loss)
    g_raw: dict[str, torch.Tensor]            # the same terms before weighting
    d_loss: torch.Tensor | None               # None in the init phase


def gray3(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [-1, 1] -> the same image as 3-channel grayscale (ITU-R 601), in [-1, 1]."""
    return (luma(x) * 2.0 - 1.0).expand(-1, 3, -1, -1)


class GANModel:
    """Generator + discriminator + optimizers + loss terms. Subclasses define `d_loss` and `g_adv_terms`."""

    name = ""
    uses_gray_features = False     # does the G loss need backbone features of grayscale anime (gram)?

    def __init__(self, arch: CartoonGanParams | AnimeGanParams | SpadeGanParams, common: GanCommonParams,
                 backbone: nn.Module,
                 landmark: L.LandmarkLoss | None, landmark_weight: float, device: torch.device,
                 amp_dtype: torch.dtype | None, channels_last: bool):
        self.device, self.amp_dtype = device, amp_dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.G = build_generator(arch.generator, common.image_size).to(device, memory_format=self.memory_format)
        self.D = build_discriminator(arch.discriminator).to(device, memory_format=self.memory_format)
        self.g_train, self.d_train = self.G, self.D   # what the step trains through: DDP wrappers (`distribute`)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=common.lr_g_init, betas=common.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=common.lr_d, betas=common.betas)
        self.lr = {"init": common.lr_g_init, "gan": common.lr_g}
        self.backbone = backbone
        self.landmark, self.landmark_weight = landmark, landmark_weight
        self.weights = dict(arch.weights)              # term name -> weight (the settings' fields)
        self.init_weights = dict(common.init_weights)
        self.regularizer = common.d_regularizer

    # ---------------------------------------------------------------- helpers
    def autocast(self):
        """bf16 autocast where `amp_dtype` is set (CUDA, or a CPU with native bf16), else a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch in the networks' memory format."""
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def discriminate(self, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """D on several batches in one forward pass (D's norms are per image, so this equals separate calls
        up to float rounding, and costs one pass instead of several); float32 logits per batch."""
        x = torch.cat([self.prepare(i) for i in images])
        return tuple(t.float() for t in self.d_train(x).split([len(i) for i in images]))

    def distribute(self, wrap) -> None:
        """Train G and D through `wrap(module)` (DDP): the G forward of every step and D's own step."""
        self.g_train, self.d_train = wrap(self.G), wrap(self.D)

    def set_phase(self, phase: str) -> None:
        for g in self.opt_g.param_groups:
            g["lr"] = self.lr[phase]

    # ---------------------------------------------------------------- what G and D see
    def generator_input(self, b: Batch) -> torch.Tensor:
        """The generator's input: the photo (the painter: its conditioning)."""
        return b.photo

    def d_real(self, b: Batch) -> torch.Tensor:
        """The real images D learns to accept (the DRAGAN penalty perturbs them)."""
        return b.anime

    def d_score(self, b: Batch, images: torch.Tensor) -> torch.Tensor:
        """D's logits on an image batch, through the training wrapper (the painter: paired with `b.cond`)."""
        return self.d_train(images)

    def d_penalty(self, b: Batch) -> torch.Tensor | None:
        """The `gan.common.d_regularizer` term of D's loss (already weighted), or None."""
        r = self.regularizer
        if r.kind == "none" or r.weight == 0:
            return None
        return r.weight * L.dragan_penalty(lambda x: self.d_score(b, x), self.d_real(b).float(), r.perturbation)

    # ---------------------------------------------------------------- losses
    def init_terms(self, b: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reconstruction: content L1 on backbone features + pixel L1 (raw values)."""
        return {"con": L.content_loss(self.backbone(fake).float(), b.photo_feat.float()),
                "pixel": F.l1_loss(fake.float(), b.photo.float())}

    def d_loss(self, b: Batch, fake: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss on one batch (`fake` is detached)."""
        raise NotImplementedError

    def g_adv_terms(self, b: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw adversarial + content (+ style) terms; keys must be in `self.weights`."""
        raise NotImplementedError

    # ---------------------------------------------------------------- one step
    def step(self, b: Batch, phase: str) -> StepResult:
        """One optimisation step of `phase`: init = G alone; gan = D once, then G once (D frozen).

        The G step's terms call `self.D`, never D's DDP wrapper: D is frozen there, and a wrapper's forward
        would arm its reducer for gradients that never come (DDP then fails at D's next step).
        """
        d_loss = None
        if phase == "init":
            with self.autocast():
                fake = self.g_train(self.generator_input(b))
                raw = self.init_terms(b, fake)
            weights = self.init_weights
        else:
            with self.autocast():
                fake = self.g_train(self.generator_input(b))
                d_loss = self.d_loss(b, fake.detach())
            penalty = self.d_penalty(b)
            if penalty is not None:
                d_loss = d_loss + penalty
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            self.D.requires_grad_(False)          # no weight gradients for D in the G step
            with self.autocast():
                raw = self.g_adv_terms(b, fake)
                if self.landmark is not None and self.landmark_weight > 0:
                    raw["landmark"] = self.landmark(fake, b.points).float()
            self.D.requires_grad_(True)
            weights = {**self.weights, "landmark": self.landmark_weight}
        terms = {k: weights[k] * v for k, v in raw.items()}
        loss_g = sum(terms.values())
        if not torch.isfinite(loss_g.detach()):
            bad = {name: round(float(v.detach()), 4) for name, v in raw.items()}
            raise FloatingPointError(f"non-finite generator loss ({bad})")
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        return StepResult(terms, raw, d_loss)


class CartoonGAN(GANModel):
    """BCE GAN; D learns real anime -> 1, G(p) -> 0 and edge-smoothed anime -> 0 (so G must draw clear edges)."""

    name = "cartoongan"

    def d_loss(self, b: Batch, fake: torch.Tensor) -> torch.Tensor:
        real, gen, smooth = self.discriminate(b.anime, fake, b.anime_smooth)
        return L.bce_d_loss(real, gen, smooth)

    def g_adv_terms(self, b: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"adv": L.bce_g_loss(self.D(fake).float()),
                "con": L.content_loss(self.backbone(fake).float(), b.photo_feat.float())}


class AnimeGAN(GANModel):
    """LSGAN; D also calls grayscale anime and edge-smoothed grayscale anime fake; G adds gram and YUV colour."""

    name = "animegan"
    uses_gray_features = True

    def __init__(self, arch: AnimeGanParams, *args, **kwargs):
        super().__init__(arch, *args, **kwargs)
        self.d_weights = arch.d_weights

    def d_loss(self, b: Batch, fake: torch.Tensor) -> torch.Tensor:
        real, gen, gray, smooth = self.discriminate(b.anime, fake, b.anime_gray, gray3(b.anime_smooth))
        return L.lsgan_d_loss(real, gen, gray, smooth, self.d_weights)

    def g_adv_terms(self, b: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        feat_fake = self.backbone(fake).float()
        return {"adv": L.lsgan_g_loss(self.D(fake).float()),
                "con": L.content_loss(feat_fake, b.photo_feat.float()),
                "gram": L.gram_loss(feat_fake, b.anime_gray_feat.float()),
                "color": L.color_loss(fake.float(), b.photo.float())}


class SpadeGAN(GANModel):
    """The painter (SPADE-AnimeFace): paired, trained on anime faces alone. G paints the anime face from its
    conditioning; a multi-scale PatchGAN judges (conditioning, image) with the hinge loss; G adds D feature
    matching, perceptual L1 on the backbone and pixel L1 against the face the conditioning was made from.
    The init phase (inherited) is the same reconstruction without D."""

    name = "spade"

    def generator_input(self, b: Batch) -> torch.Tensor:
        return b.cond

    def d_real(self, b: Batch) -> torch.Tensor:
        return b.photo

    def pair(self, b: Batch, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([b.cond.to(images.dtype), images], dim=1)

    def d_score(self, b: Batch, images: torch.Tensor) -> torch.Tensor:
        return self.d_train(self.pair(b, images))

    def d_loss(self, b: Batch, fake: torch.Tensor) -> torch.Tensor:
        real, gen = self.discriminate(self.pair(b, b.photo), self.pair(b, fake))
        return L.hinge_d_loss(real, gen)

    def g_adv_terms(self, b: Batch, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        fake_feats = self.D.features(self.pair(b, fake))
        with torch.no_grad():
            real_feats = self.D.features(self.pair(b, b.photo))
        adv = torch.cat([f[-1].flatten(1) for f in fake_feats], dim=1).float()
        return {"adv": L.hinge_g_loss(adv),
                "fm": L.feature_matching_loss(fake_feats, real_feats),
                "con": L.content_loss(self.backbone(fake).float(), b.photo_feat.float()),
                "pixel": F.l1_loss(fake.float(), b.photo.float())}


MODEL_CLASSES: dict[str, type[GANModel]] = {"cartoongan": CartoonGAN, "animegan": AnimeGAN, "spade": SpadeGAN}
