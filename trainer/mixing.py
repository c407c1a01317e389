"""Mixup and cutmix: loss-level regularisers (hyperparameters.mixup_alpha / cutmix_alpha).

Not part of the dataset's augmentation spec (so dataset version ids do not change): they act in
`Run.train_step`, after augmentation, on the images and targets of one global batch.

Per batch (standard one-lambda-per-batch form):
- lam ~ Beta(alpha, alpha); partner of position i of the global batch is `perm[i]`;
- mixup: x = lam * x + (1 - lam) * x[perm];
- cutmix: one box of area ~(1 - lam) of the image (clipped at the border) is pasted from
  x[perm]; lam is then corrected to the share of the image left unpasted;
- targets: lam * y + (1 - lam) * y[perm] (label smoothing, being affine, then gives exactly the
  mix of the smoothed targets).
With both alphas > 0 each batch is mixup or cutmix with probability 0.5.

Every draw comes from one seeded CPU generator, the same on every rank (checkpointed with the
other RNG streams), and is made for the whole global batch with a fixed generator consumption per
step, so the same seed gives the same run, resume is exact, and N processes mix exactly the image
pairs one process would (each rank augments its own rows plus their partners' rows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch


@dataclass
class Mix:
    """One batch's draw: `kind` ('mixup' | 'cutmix'), the (area-corrected) `lam`, the partner of
    every position of the global batch, and the cutmix box (y0, y1, x0, x1)."""
    kind: str
    lam: float
    perm: torch.Tensor
    box: Optional[Tuple[int, int, int, int]] = None

    def partners(self, rows: Optional[torch.Tensor]) -> torch.Tensor:
        """Positions (in the global batch) of the partners of `rows` (all positions when None)."""
        return self.perm if rows is None else self.perm.index_select(0, rows)

    def apply(self, x: torch.Tensor, y: torch.Tensor, rows: Optional[torch.Tensor] = None
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        """One process (`rows` None): x, y are the whole global batch. Distributed: x, y are this
        rank's `rows` followed by their partners' rows (in the order of `partners(rows)`)."""
        if rows is None:
            part = self.perm.to(x.device)
            x_b, y_b = x.index_select(0, part), y.index_select(0, part)
        else:
            k = int(rows.numel())
            x, x_b, y, y_b = x[:k], x[k:], y[:k], y[k:]
        if self.kind == "mixup":
            x = x * self.lam + x_b * (1.0 - self.lam)
        else:
            y0, y1, x0, x1 = self.box
            x = x.clone()
            x[:, :, y0:y1, x0:x1] = x_b[:, :, y0:y1, x0:x1]
        return x, y * self.lam + y_b * (1.0 - self.lam)


class Mixer:
    """Draws a `Mix` per batch from `generator` (CPU, seeded by the run); `active` only when an
    alpha is > 0 — otherwise nothing is drawn and training is exactly as without it."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, generator: torch.Generator):
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.g = generator

    @property
    def active(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def draw(self, total: int, height: int, width: int) -> Mix:
        # torch has no seeded Beta sampler: one 62-bit draw from the run's generator seeds this
        # step's numpy generator, so the generator advances by the same amount every step.
        seed = int(torch.randint(0, 2**62, (1,), generator=self.g).item())
        rng = np.random.default_rng(seed)
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            kind = "mixup" if rng.random() < 0.5 else "cutmix"
        else:
            kind = "mixup" if self.mixup_alpha > 0 else "cutmix"
        alpha = self.mixup_alpha if kind == "mixup" else self.cutmix_alpha
        lam = float(rng.beta(alpha, alpha))
        if not math.isfinite(lam):  # tiny alphas: Beta puts its mass on 0 and 1
            lam = float(rng.random() < 0.5)
        perm = torch.from_numpy(rng.permutation(total)).long()
        if kind == "mixup":
            return Mix(kind, lam, perm)
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(height * cut), int(width * cut)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, height)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, width)
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
        return Mix(kind, lam, perm, (y0, y1, x0, x1))
