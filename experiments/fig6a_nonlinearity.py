"""Fig. 6a: does a non-linearity in the bottleneck hurt? (linear vs ReLU6 after the projection)

Question (paper §6.4, "Importance of linear bottlenecks"): with everything else fixed
(shortcuts between bottlenecks, expansion 6), does ReLU6 after the 1x1 projection's batch norm
lower top-1 compared with the linear bottleneck? The paper (Fig. 6a, MobileNetV2 1.0/224, one
run each) reads ~71.0 (linear) vs ~70.35 (ReLU6) at 7M steps, a gap of ~0.6 points.

Runs: 2 variants x seeds, at the preset's operating point (1.0/224 for ImageNet presets; the
base config's width/resolution otherwise, 0.35/32 for digits).

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 2 (1 seed) | 2 x 420 epochs of 1.0/224: ~108 GPU-hours* |
| imagenet_short | 6 (3 seeds) | 6 x 90 epochs: ~69 GPU-hours* |
| small (cifar10, 32 px) | 6 (3 seeds) | ~0.1 GPU-hours* |
| digits | 4 (2 seeds) | ~1 min per run on a 2-core CPU (machinery demo, not evidence) |
| fashion | 6 (3 seeds; 0.35/32, 15 epochs) | ~14 min per run on one core; with fig6b_shortcut.py: docs/results.md (measured) |

*Estimates: 3 x forward MAdds (300.8 M at 1.0/224) x 1.28 M images x epochs at an assumed
2.5e12 MAdds/s per GPU, i.e. ~54 GPU-hours per 420-epoch 1.0/224 run (see
mnv2_jax.sweeps.compute; ``mnv2-sweep ... --dry_run`` prints them).
The paper's own runs were 7M steps at batch 96 on asynchronous workers (~525 epochs).

    mnv2-sweep experiments/fig6a_nonlinearity.py --preset=digits --parallel=2
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")
VARIANTS = ("linear", "relu6")


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): bottleneck activation x seeds, shortcut fixed to the paper's."""
  p, arg = presets.parse_preset(preset)
  runs = C.product(
      C.fixed(p.fixed),
      C.sweep("model.bottleneck_activation", VARIANTS),
      C.fixed({"model.shortcut": "bottleneck"}),
      p.seed_sweep(seeds))
  return p.base_config(arg), runs
