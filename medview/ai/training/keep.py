"""Keeping what the parent knew while a fine-tune learns a new site: two established
remedies for forgetting, beside rehearsal (train_replay) and frozen batch-norm statistics.

- Distillation, as in Learning without Forgetting (Li & Hoiem 2016; soft targets after
  Hinton et al. 2015): on some patches the student's class probabilities, softened by a
  temperature, are pulled toward the frozen parent's by their KL divergence. Labels say
  which voxels are lesions; the parent's probabilities also say how sure it was everywhere
  else, which is what the findings' false-positive stage and threshold were tuned on.
  Settings.distill is its weight beside the DiceCE loss; Settings.distill_on says where:
  "rehearsal" (patches of the bundled model's own studies, where the parent is right) or
  "all" (also the reader's studies, where it is not and the labels must win).
- L2-SP (Li, Grandvalet & Davoine 2018): the weights are pulled toward the parent's rather
  than toward zero. Applied decoupled, after each optimiser step, like AdamW's weight decay
  (w -= lr * strength * (w - w_parent)), so its strength does not depend on Adam's scaling of
  the gradients: with a strength s, a weight the loss keeps pushing settles about 1/s from
  its start (Adam moves a weight about lr a step). Settings.l2sp is that strength.

Measured (benchmarks/bench_finetune.py, lesion-seg 1.1 fine-tuned on 8 site-B studies with
8 rehearsal studies and frozen batch-norm statistics; Dice of the listed findings): without
either, site A fell from 0.941 to 0.896 (-0.045) while site B rose from 0.702 to 0.771;
with distillation (weight 1, rehearsal patches) site A moved by -0.005 and site B by +0.058;
with L2-SP 10 alone, -0.019 and +0.073; both together did worse in the one run made
(-0.037, +0.025; scored with 1.1's later outline extent, under which the others read
+0.002/+0.052 and -0.006/+0.062). Distillation is on by default (about 10% more time
a step: the parent's forward pass on the rehearsal half of each batch); L2-SP is off."""

from __future__ import annotations

from typing import Any

TEMPERATURE = 2.0  # Hinton et al.'s and LwF's usual choice; the loss is scaled by T²


def distillation_loss(student: Any, teacher: Any, temperature: float = TEMPERATURE) -> Any:
    """Mean over voxels of KL(teacher || student) of the softened class probabilities, times
    T² (so its gradients keep their size whatever T); logits (N, classes, ...). Zero when
    the two agree; the teacher gets no gradient."""
    import torch.nn.functional as F

    t = float(temperature)
    log_q = F.log_softmax(student.float() / t, 1)
    log_p = F.log_softmax(teacher.detach().float() / t, 1)
    return (log_p.exp() * (log_p - log_q)).sum(1).mean() * (t * t)


def frozen_parent(module: Any) -> Any:
    """The parent network as the distillation teacher: eval mode (its batch norms' running
    statistics, as at inference), no gradients."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


class Anchor:
    """L2-SP, decoupled: after each optimiser step, every trainable weight moves a fraction
    lr * strength of the way back to where the fine-tune started (the parent's weights)."""

    def __init__(self, model: Any, strength: float) -> None:
        self.strength = float(strength)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.start = [p.detach().clone() for p in self.params]

    def pull(self, lr: float) -> None:
        import torch

        factor = min(1.0, lr * self.strength)
        with torch.no_grad():
            for p, p0 in zip(self.params, self.start, strict=True):
                p.sub_(factor * (p - p0))

    def distance(self) -> float:
        """Squared distance of the weights from the parent's (for tests and reports)."""
        return float(
            sum(
                float(((p.detach() - p0) ** 2).sum())
                for p, p0 in zip(self.params, self.start, strict=True)
            )
        )


def describe(settings: Any, base: str) -> str:
    """The card's words for what kept the parent's knowledge ('' for neither)."""
    where = "all" if settings.distill_on == "all" else "the rehearsal"
    return "".join(
        [
            f" plus distillation from {base} on {where} patches (weight {settings.distill})"
            if settings.distill > 0
            else "",
            f", weights pulled toward the parent's (L2-SP {settings.l2sp})"
            if settings.l2sp > 0
            else "",
        ]
    )
