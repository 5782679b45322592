"""Fig. 6 style: eval top-1 vs training step per variant, mean over seeds with a seed band.

One figure per MobileNetV2 operating point (dataset, width, resolution) that has at least two
variants of a panel; panels as in the paper: (a) non-linearity in the bottleneck (runs with
shortcuts between bottlenecks), (b) shortcut placement (runs with linear bottlenecks). Curves
are averaged over the seeds evaluated at each step (an interrupted seed stops contributing
where it stopped); the band is the min-max over seeds (``band="minmax"``) or mean ± std
(``"std"``).
Artists carry ``gid="curve:<variant>"`` / ``"band:<variant>"`` so tests can find them.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from mnv2_jax.plots import style
from mnv2_jax.results import collect

PANELS = (
    ("nonlinearity", "(a) Impact of non-linearity in the bottleneck layer",
     lambda r: r.shortcut == "bottleneck" and r.expansion_factor == 6,
     {"linear/bottleneck": "Linear bottleneck", "relu6/bottleneck": "ReLU6 in bottleneck"}),
    ("shortcut", "(b) Impact of variations in residual blocks",
     lambda r: r.bottleneck_activation == "linear" and r.expansion_factor == 6,
     {"linear/bottleneck": "Shortcut between bottlenecks",
      "linear/expansion": "Shortcut between expansions", "linear/none": "No residual"}),
)
BANDS = ("minmax", "std")


def seed_band(curves: Sequence[Sequence[tuple[int, float]]], band: str = "minmax"):
  """(steps, mean, lo, hi, n) at every step any curve has, over the curves that have it.

  Seeds evaluated at the same steps (the normal case) give plain per-step statistics; a seed
  that stopped early simply stops contributing (``n`` says how many seeds each step has).
  """
  if band not in BANDS:
    raise ValueError(f"band must be one of {BANDS}, got {band!r}")
  maps = [dict(c) for c in curves if c]
  steps = sorted(set().union(*(set(m) for m in maps))) if maps else []
  mean, lo, hi, n = [], [], [], []
  for step in steps:
    v = np.array([m[step] for m in maps if step in m], dtype=np.float64)
    mean.append(v.mean())
    n.append(v.size)
    if band == "minmax":
      lo.append(v.min())
      hi.append(v.max())
    else:
      std = v.std(ddof=1) if v.size > 1 else 0.0
      lo.append(v.mean() - std)
      hi.append(v.mean() + std)
  return tuple(np.array(a, dtype=float) for a in (steps, mean, lo, hi, n))


def _points(records: Sequence[collect.RunRecord]):
  by_point = collections.defaultdict(list)
  for r in records:
    if r.model == "mobilenet_v2" and r.curve:
      by_point[(r.dataset, r.width, r.resolution)].append(r)
  return by_point


def _panels_for(runs):
  panels = []
  for key, title, keep, labels in PANELS:
    variants = {r.variant for r in runs if keep(r) and r.variant in labels}
    if len(variants) >= 2:
      panels.append((key, title, keep, labels))
  return panels


def figures(records: Sequence[collect.RunRecord], band: str = "minmax"):
  """[(stem, figure)] for every operating point with something to compare."""
  out = []
  for (dataset, width, res), runs in sorted(_points(records).items(),
                                            key=lambda kv: (str(kv[0][0]), kv[0][1], kv[0][2])):
    panels = _panels_for(runs)
    if not panels:
      continue
    fig, axes = style.figure(len(panels))
    max_step = max(s for r in runs for s, _ in r.curve)
    scale, xlabel = (1e6, "Step, millions") if max_step >= 1e6 else (1.0, "Step")
    for ax, (key, title, keep, labels) in zip(axes, panels):
      for variant, name in labels.items():
        seeds = [r for r in runs if keep(r) and r.variant == variant]
        steps, mean, lo, hi, _ = seed_band([r.curve for r in seeds], band)
        if not len(steps):
          continue
        x = steps / scale
        (line,) = ax.plot(x, 100 * mean, color=style.color(variant),
                          label=f"{name} (n={len(seeds)})", lw=1.5,
                          marker="o" if len(steps) <= 20 else None, ms=3)
        line.set_gid(f"curve:{variant}")
        if len(seeds) > 1:
          fill = ax.fill_between(x, 100 * lo, 100 * hi, color=style.color(variant), alpha=0.2,
                                 lw=0)
          fill.set_gid(f"band:{variant}")
      ax.set_title(title)
      ax.set_xlabel(xlabel)
      ax.set_ylabel("Top 1 Accuracy, %")
      ax.legend(loc="best")
    where = f"MobileNetV2 {width:g}/{res}" + (f", {dataset}" if dataset else "")
    fig.suptitle(f"{where}: eval top-1 during training (mean over seeds, "
                 f"{'min-max' if band == 'minmax' else '±1 std'} band)")
    stem = f"fig6_{dataset or 'data'}_w{width:g}_r{res}".replace("/", "-")
    out.append((stem, fig))
  return out
