"""Fig. 6b: where should the shortcut go? (between bottlenecks vs between expansions vs none)

Question (paper §6.4, "Inverted residual connections"): with linear bottlenecks and expansion
6, is the identity shortcut better on the thin bottleneck tensors (the paper's design) than on
the wide expansion tensors (definition (A) of shared/reference/mobilenet_v2.md §5), or than no
shortcut at all? All three variants have identical parameters and MAdds. The paper (Fig. 6b,
1.0/224, one run each) reads ~71.0 (bottleneck) > ~70.5 (expansion) > ~69.6 (none) at 7M steps.

The baseline (linear, bottleneck) is the same run as Fig. 6a's baseline: launched together
(``mnv2-sweep experiments/fig6a_nonlinearity.py experiments/fig6b_shortcut.py``) it runs once:
8 runs for the digits preset, measured at 16 min wall time with ``--parallel=2`` on a 2-core
CPU shared with other jobs.

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 3 (1 seed) | 3 x 420 epochs of 1.0/224: ~162 GPU-hours* |
| imagenet_short | 9 (3 seeds) | ~104 GPU-hours* |
| small (cifar10, 32 px) | 9 (3 seeds) | ~0.15 GPU-hours* |
| digits | 6 (2 seeds) | ~1 min per run on a 2-core CPU (machinery demo, not evidence) |
| fashion | 9 (3 seeds; 0.35/32, 15 epochs) | ~14 min per run on one core; with fig6a_nonlinearity.py, 12 runs: docs/results.md (measured) |

*Estimates as in fig6a_nonlinearity.py (mnv2_jax.sweeps.compute).

    mnv2-sweep experiments/fig6a_nonlinearity.py experiments/fig6b_shortcut.py \
        --preset=digits --parallel=2
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")
VARIANTS = ("bottleneck", "expansion", "none")


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): shortcut placement x seeds, linear bottleneck."""
  p, arg = presets.parse_preset(preset)
  runs = C.product(
      C.fixed(p.fixed),
      C.fixed({"model.bottleneck_activation": "linear"}),
      C.sweep("model.shortcut", VARIANTS),
      p.seed_sweep(seeds))
  return p.base_config(arg), runs
