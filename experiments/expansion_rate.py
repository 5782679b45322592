"""Expansion rate: are rates between 5 and 10 equally good, and do small networks want smaller?

Question (paper §6.1 footnote / §3.4): "expansion rates between 5 and 10 result in nearly
identical performance curves, with smaller networks being better off with slightly smaller
expansion rates". The expansion factor t (every block but the first) sweeps {2, 3, 4, 5, 6, 8,
10} at a small and a large width, with the paper's block (linear bottleneck, shortcuts between
bottlenecks). t changes MAdds and parameters, so the answer is a plot: accuracy vs MAdds with t
moving along one curve per width (``along_expansion_factor.png``, `mnv2_jax.plots.along`); the
claim holds if each curve is flat from t=5 to t=10 and the small width's peak sits at a lower t.

Runs: 7 rates x 2 widths x seeds.

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 14 (1 seed; widths 0.35 and 1.0 at 224) | ~416 GPU-hours* |
| imagenet_short | 42 (3 seeds) | ~268 GPU-hours* |
| small (cifar10, 32 px; widths 0.35 and 1.0) | 42 (3 seeds) | ~0.33 GPU-hours* |
| digits | 28 (2 seeds; widths 0.35 and 0.5 at 32 px) | ~15-20 min with --parallel=2 on 2 CPU cores (demo, not evidence) |
| fashion | 42 (3 seeds; widths 0.35 and 1.0 at 32 px) | 4.8e14 training MAdds: ~9 h with --parallel=2 on a 2-core CPU (extrapolated from the fashion Fig. 6 study's measured rate, docs/results.md) |

*Estimates: ``mnv2-sweep ... --dry_run`` prints them (mnv2_jax.sweeps.compute).

    mnv2-sweep experiments/expansion_rate.py --preset=digits --dry_run
    mnv2-sweep experiments/expansion_rate.py --preset=digits --parallel=2 --report
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")
RATES = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
POINTS = {  # (width, resolution) per preset: a small and a large network
    "paper": ((0.35, 224), (1.0, 224)),
    "imagenet_short": ((0.35, 224), (1.0, 224)),
    "small": ((0.35, 32), (1.0, 32)),
    "digits": ((0.35, 32), (0.5, 32)),
    "fashion": ((0.35, 32), (1.0, 32)),
}


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): width points x expansion rates x seeds, the paper's block."""
  p, arg = presets.parse_preset(preset)
  points = POINTS[p.name]
  runs = C.product(
      C.fixed(p.fixed),
      C.fixed({"model.bottleneck_activation": "linear", "model.shortcut": "bottleneck"}),
      C.zipit(C.sweep("model.width_multiplier", [w for w, _ in points]),
              C.sweep("input.resolution", [r for _, r in points])),
      C.sweep("model.expansion_factor", RATES),
      p.seed_sweep(seeds))
  return p.base_config(arg), runs
