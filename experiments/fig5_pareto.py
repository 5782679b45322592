"""Fig. 5: accuracy vs MAdds of MobileNetV2 over width x resolution, with MobileNetV1.

Question: does our MobileNetV2 reproduce the paper's accuracy/MAdds trade-off curve (the 22
released checkpoints, ``mnv2-plot --overlay_paper``), and does it dominate MobileNetV1 at equal
MAdds? Paper grid: widths 0.35, 0.5, 0.75, 1.0 at resolutions 96, 128, 160, 192, 224, plus 1.4
at 224 (21 points; 1.3 is not plotted); the comparator is MobileNetV1 at widths 0.25, 0.5,
0.75, 1.0 and resolutions 128, 160, 192, 224 (its 16 released checkpoints). Smaller presets
scale the resolutions down (small: 32..160; digits: 32, 48, 64 and 1.4 at 64; V1 at 48, 64).

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 37 (21 V2 + 16 V1, 1 seed) | ~940 GPU-hours* (420 epochs each) |
| imagenet_short | 111 (3 seeds) | ~600 GPU-hours* (90 epochs each) |
| small (cifar10) | 111 (3 seeds) | ~11 GPU-hours* |
| digits | 42 (13 V2 + 8 V1, 2 seeds) | ~1.5-3 h with --parallel=2 on 2 CPU cores (demo) |
| fashion | 51 (9 V2 + 8 V1, 3 seeds; 32 and 48 px) | 1.3e15 training MAdds: ~1 day with --parallel=2 on a 2-core CPU (extrapolated, docs/results.md) |

*Estimates: 3 x forward MAdds (from mnv2_jax.complexity, per point) x images x epochs at an
assumed 2.5e12 MAdds/s per GPU (mnv2_jax.sweeps.compute); ``--dry_run`` prints them.

    mnv2-sweep experiments/fig5_pareto.py --preset=imagenet_short --emit=commands
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): the V2 width x resolution grid, then the V1 grid, x seeds."""
  p, arg = presets.parse_preset(preset)
  v2 = C.product(
      C.fixed({"model.name": "mobilenet_v2", "model.bottleneck_activation": "linear",
               "model.shortcut": "bottleneck"}),
      p.v2_grid())
  runs = C.product(C.fixed(p.fixed), C.chain(v2, p.v1_grid()), p.seed_sweep(seeds))
  return p.base_config(arg), runs
