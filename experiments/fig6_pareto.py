"""Fig. 6a + 6b as Pareto curves: do the paper's block choices win at every size, not one?

Question: the paper compares the bottleneck non-linearity (Fig. 6a) and the shortcut placement
(Fig. 6b) at one operating point (1.0/224). Here the same four variants (linear or ReLU6
bottleneck with shortcuts between bottlenecks; linear with shortcuts between expansions or
none) run at three operating points, so Fig. 5 shows one accuracy-vs-MAdds frontier per variant with
seed error bars, and the paired deltas (variant minus the linear/bottleneck baseline, per seed)
are reported at each point. The four variants have identical MAdds at each point.

This is the README's main job with ``--preset=digits``: 4 variants x 3 operating points
(0.35/32, 0.35/40 and 0.5/32: width/resolution) x 2 seeds = 24 runs of 8 epochs (the digits
preset's other studies run 12), to fit the ~15 min budget on a 2-core CPU. Each run costs
~40-60 s of the machine, a good half of it start-up, tracing and (for a configuration's first
seed) compilation, which does not shrink with the run length: at 12 epochs the same 24 runs
took 17 min (16 min 54 s of runs, fresh clone, empty home, pip excluded). The price of 8
epochs: the baseline at 0.35/32 reaches 86.9% instead of 93.5% (mean of 2 seeds), and the
curves have not levelled off; the variants keep their order (README). ``--seeds=1`` halves the time, without error bars;
width 0.25 cannot wire the expansion shortcut (its first block has no expansion conv). The
preset's ARG keeps working for everything but the width and resolution, which this study sets.

| preset | runs (default seeds) | expected compute |
|---|---|---|
| paper | 12 (1 seed; widths 0.5, 0.75, 1.0 at 224) | ~435 GPU-hours* |
| imagenet_short | 36 (3 seeds) | ~280 GPU-hours* |
| small (cifar10, 32 px; widths 0.35, 0.5, 1.0) | 36 (3 seeds) | ~0.26 GPU-hours* |
| digits | 24 (2 seeds, 8 epochs) | 14-15 min measured (fresh clone, empty home) with --parallel=2 on a 2-core CPU (demo, not evidence) |
| fashion | 36 (3 seeds; widths 0.35, 0.5, 0.75 at 32 px) | 3.3e14 training MAdds: ~6 h with --parallel=2 on a 2-core CPU (extrapolated, docs/results.md) |

*Estimates: ``mnv2-sweep ... --dry_run`` prints them (mnv2_jax.sweeps.compute).

    mnv2-sweep experiments/fig6_pareto.py --preset=digits --seeds=2 --parallel=2 --measure --report
"""

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import presets

PRESETS = presets.select("paper", "imagenet_short", "small", "digits", "fashion")
# (bottleneck activation, shortcut): the baseline, Fig. 6a's alternative, Fig. 6b's two.
VARIANTS = (("linear", "bottleneck"), ("relu6", "bottleneck"), ("linear", "expansion"),
            ("linear", "none"))
POINTS = {  # (width, resolution) per preset
    "paper": ((0.5, 224), (0.75, 224), (1.0, 224)),
    "imagenet_short": ((0.5, 224), (0.75, 224), (1.0, 224)),
    "small": ((0.35, 32), (0.5, 32), (1.0, 32)),
    "digits": ((0.35, 32), (0.35, 40), (0.5, 32)),
    "fashion": ((0.35, 32), (0.5, 32), (0.75, 32)),
}


# The run length where it differs from the preset's (see the docstring: the README's budget).
RUN_LENGTH = {"digits": {"train.num_epochs": 8.0}}


def get_sweep(preset: str = "digits", seeds: int | None = None):
  """(base config, runs): width points x the four variants x seeds."""
  p, arg = presets.parse_preset(preset)
  points = POINTS[p.name]
  runs = C.product(
      C.fixed({**p.fixed, **RUN_LENGTH.get(p.name, {})}),
      C.zipit(C.sweep("model.width_multiplier", [w for w, _ in points]),
              C.sweep("input.resolution", [r for _, r in points])),
      C.zipit(C.sweep("model.bottleneck_activation", [a for a, _ in VARIANTS]),
              C.sweep("model.shortcut", [s for _, s in VARIANTS])),
      p.seed_sweep(seeds))
  return p.base_config(arg), runs
