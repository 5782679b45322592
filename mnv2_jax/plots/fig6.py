"""Fig. 6 style: the eval metric vs training step per variant, mean over seeds with a seed band.

The metric is the runs' own (`collect.RunRecord.curve` of ``eval/<metric>``: top-1, or mAP /
mIoU for dense runs), named on the y axes and in the title; records must share one
(`collect.metric_of`; `mnv2-plot` draws each metric's figures apart).

One figure per operating point (model, dataset, width, resolution, and any other setting that
varies among the runs) with one panel per ablation axis that has two or more values there
(`mnv2_jax.ablations`: the paper's (a) non-linearity in the bottleneck and (b) shortcut
placement, and every axis declared since). A panel holds the runs whose other axes are at their
baselines, one curve per value, labelled from the axis' declaration. Curves are averaged over
the seeds evaluated at each step (an interrupted seed stops contributing where it stopped); the
band is the min-max over seeds (``band="minmax"``) or mean ± std (``"std"``).
Artists carry ``gid="curve:<variant>"`` / ``"band:<variant>"`` so tests can find them.
"""

from __future__ import annotations

import collections
import string
from collections.abc import Sequence

import numpy as np

from mnv2_jax import ablations
from mnv2_jax import spec as spec_lib
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import grouping

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
  varying = grouping.varying_settings(records)
  by_point = collections.defaultdict(list)
  for r in records:
    if r.curve and ablations.axes(r.model):
      settings = tuple((k, r.settings.get(k)) for k in varying)
      by_point[(r.model, r.dataset, r.width, r.resolution, settings)].append(r)
  return by_point


def panels_for(runs: Sequence[collect.RunRecord]):
  """[(axis, {value: [runs]})] for each axis with >= 2 values among runs whose other axes are
  at their baselines."""
  panels = []
  for axis in ablations.axes(runs[0].model):
    others = [a for a in ablations.axes(runs[0].model) if a is not axis]
    by_value = collections.defaultdict(list)
    for r in runs:
      if all(a.is_baseline(r.axes[a.field]) for a in others):
        by_value[axis.normalize(r.axes[axis.field])].append(r)
    if len(by_value) >= 2:
      ordered = sorted(by_value, key=lambda v: (not axis.is_baseline(v), _order(axis, v)))
      panels.append((axis, {v: by_value[v] for v in ordered}))
  return panels


def _order(axis: ablations.Axis, value):
  return axis.values.index(value) if axis.values is not None else value


def figures(records: Sequence[collect.RunRecord], band: str = "minmax"):
  """[(stem, figure)] for every operating point with something to compare. ValueError if
  `records` mix metrics."""
  name = collect.metric_of(records)
  out = []
  for (model, dataset, width, res, settings), runs in sorted(
      _points(records).items(), key=lambda kv: (kv[0][0], str(kv[0][1]), kv[0][2], kv[0][3],
                                                repr(kv[0][4]))):
    panels = panels_for(runs)
    if not panels:
      continue
    fig, axes = style.figure(len(panels))
    max_step = max(s for r in runs for s, _ in r.curve)
    scale, xlabel = (1e6, "Step, millions") if max_step >= 1e6 else (1.0, "Step")
    for i, (ax, (axis, by_value)) in enumerate(zip(axes, panels)):
      for value, seeds in by_value.items():
        variant = seeds[0].variant
        steps, mean, lo, hi, _ = seed_band([r.curve for r in seeds], band)
        if not len(steps):
          continue
        x = steps / scale
        (line,) = ax.plot(x, 100 * mean, color=style.color(variant),
                          label=f"{axis.value_label(value)} (n={len(seeds)})", lw=1.5,
                          marker="o" if len(steps) <= 20 else None, ms=3)
        line.set_gid(f"curve:{variant}")
        if len(seeds) > 1:
          fill = ax.fill_between(x, 100 * lo, 100 * hi, color=style.color(variant), alpha=0.2,
                                 lw=0)
          fill.set_gid(f"band:{variant}")
      ax.set_title(f"({string.ascii_lowercase[i]}) Impact of: {axis.title.lower()}")
      ax.set_xlabel(xlabel)
      ax.set_ylabel(style.value_label(name, top1="Top 1 Accuracy, %"))
      ax.legend(loc="best")
    extra = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in settings)
    where = f"{spec_lib.TITLES[model]} {width:g}/{res}" + (f", {dataset}" if dataset else "") + (
        f", {extra}" if extra else "")
    fig.suptitle(f"{where}: eval {collect.metric_label(name)} during training (mean over "
                 f"seeds, {'min-max' if band == 'minmax' else '±1 std'} band)")
    stem = f"fig6_{dataset or 'data'}_w{width:g}_r{res}" + "".join(
        f"_{k.rsplit('.', 1)[-1]}{v}" for k, v in settings)
    out.append((stem.replace("/", "-").replace(" ", ""), fig))
  return out
