"""Every Fig. 6 variant across the Fig. 5 grid: do the ablation conclusions hold at every size?

Question: the paper reports the bottleneck-activation and shortcut ablations at one operating
point (1.0/224). Do linear bottlenecks and shortcuts between bottlenecks win at every width and
resolution, i.e. is each variant's accuracy/MAdds Pareto frontier below the baseline's? All six
variants (bottleneck activation {linear, relu6} x shortcut {bottleneck, expansion, none}) have
identical MAdds and parameters at each point, so differences are paired per seed.

Runs: 6 variants x 21 grid points (13 for digits) x seeds.

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 126 (1 seed) | ~2,600 GPU-hours* (420 epochs each) |
| imagenet_short | 378 (3 seeds) | ~1,700 GPU-hours* |
| small (cifar10) | 378 (3 seeds) | ~32 GPU-hours* |
| digits | 156 (2 seeds) | ~5-10 h with --parallel=2 on 2 CPU cores (demo, not evidence) |
| fashion | 162 (3 seeds) | 4.2e15 training MAdds: ~3 days with --parallel=2 on a 2-core CPU (extrapolated, docs/results.md) |

*Estimates as in fig5_pareto.py (mnv2_jax.sweeps.compute); ``--dry_run`` prints them.

    mnv2-sweep experiments/variant_pareto.py --preset=small:dataset=cifar10 --emit=wandb_yaml
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")
ACTIVATIONS = ("linear", "relu6")
SHORTCUTS = ("bottleneck", "expansion", "none")


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): activation x shortcut x (width, resolution) grid x seeds."""
  p, arg = presets.parse_preset(preset)
  runs = C.product(
      C.fixed(p.fixed),
      C.sweep("model.bottleneck_activation", ACTIVATIONS),
      C.sweep("model.shortcut", SHORTCUTS),
      p.v2_grid(),
      p.seed_sweep(seeds))
  return p.base_config(arg), runs
