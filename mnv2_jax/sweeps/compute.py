"""Compute estimates for a sweep, from exact MAdds (``mnv2_jax.complexity``).

training MAdds of a run = 3 x forward MAdds per image x images per epoch x epochs
(forward + backward ~ 3x the forward pass; batch norm, activations and the optimizer are not
counted). GPU-hours divide that by an ASSUMED sustained rate of ``ASSUMED_MADDS_PER_S`` =
2.5e12 multiply-adds/s (5 TFLOP/s) per GPU: about 2,800 images/s for MobileNetV2 1.0/224, in
line with published mixed-precision training throughputs on A100-class GPUs. MobileNets are
memory-bound (depthwise convs), so that is ~2-4 % of such a GPU's peak, and the real figure can
be 2x either way; evaluation passes and input pipeline stalls are not included. These are
estimates for planning, not measurements.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mnv2_jax import run_record

ASSUMED_MADDS_PER_S = 2.5e12
BACKWARD_FACTOR = 3


def forward_madds(config: Any, num_classes: int = 1000) -> int:
  """MAdds of one forward pass of the run's model (1000 classes unless told otherwise)."""
  return run_record.compute_figures(config, num_classes).madds


def epochs(config: Any, train_images: int) -> float:
  """Run length in epochs (``train.num_steps`` > 0 wins over ``train.num_epochs``)."""
  steps = int(config["train"]["num_steps"])
  if steps > 0:
    return steps * int(config["input"]["global_batch_size"]) / train_images
  return float(config["train"]["num_epochs"])


@dataclasses.dataclass(frozen=True)
class Estimate:
  runs: int
  train_madds: float      # total over runs
  gpu_hours: float        # at ASSUMED_MADDS_PER_S

  def describe(self) -> str:
    return (f"{self.runs} runs, {self.train_madds:.3g} training MAdds, ~{self.gpu_hours:,.3g} "
            f"GPU-hours at an assumed {ASSUMED_MADDS_PER_S / 1e12:g}e12 MAdds/s per GPU "
            "(estimate; see mnv2_jax.sweeps.compute)")


def estimate(configs: list[Any], train_images: int | None) -> Estimate | None:
  """Estimate for a list of resolved configs; None if the dataset size is unknown."""
  if not train_images:
    return None
  total = sum(BACKWARD_FACTOR * forward_madds(c) * train_images * epochs(c, train_images)
              for c in configs)
  return Estimate(len(configs), total, total / ASSUMED_MADDS_PER_S / 3600)
