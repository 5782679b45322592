"""Accuracy vs MAdds along one compute-changing axis: the axis value moves a point along a curve.

For every declared axis that changes compute (`mnv2_jax.ablations`: the expansion factor t, the
depthwise kernel) and has two or more values among the finished runs, one figure
``along_<field>``: x = MAdds (millions, log), y = the runs' metric (top-1, or mAP / mIoU for dense
runs; %, mean over seeds, error bar = std over seeds; one metric per call), one curve per
everything-else (model, dataset, width, resolution, the other axes and settings), its points in the
order of the axis value and annotated with it ("t4"). This is the plot behind the paper's remark
that expansion rates between 5 and 10 give nearly identical curves (experiments/expansion_rate.py).
Artists carry ``gid="along:<curve label>"``.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from mnv2_jax import ablations
from mnv2_jax import spec as spec_lib
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import grouping


def curves(records: Sequence[collect.RunRecord], axis: ablations.Axis, metric: str = "final"):
  """{curve label: [(axis value, mmadds, mean, std, n), ...] by value} for one axis."""
  groups = [g for g in grouping.groups(records, metric)
            if g.first.madds is not None and axis.field in g.axes]
  varying = grouping.varying_settings([r for g in groups for r in g.runs])
  by_rest = collections.defaultdict(list)
  for g in groups:
    r = g.first
    rest = {k: v for k, v in g.axes.items() if k != axis.field}
    design = ablations.variant(r.model, {**rest, axis.field: axis.baseline},
                               spec_lib.SHORT_NAMES[r.model])
    label = " ".join(x for x in (f"{spec_lib.TITLES[r.model]} {r.width:g}/{r.resolution}",
                                 r.dataset or "", design, g.settings_text(varying)) if x)
    values = g.values(metric)
    by_rest[label].append((axis.normalize(g.axes[axis.field]), r.madds / 1e6,
                           float(np.mean(values)),
                           float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                           len(values)))
  return {k: sorted(v, key=lambda p: p[0]) for k, v in sorted(by_rest.items())
          if len({p[0] for p in v}) >= 2}


def figures(records: Sequence[collect.RunRecord], metric: str = "final"):
  """[(stem, figure)]: one per compute-changing axis with two or more values in a curve.
  ValueError if `records` mix metrics."""
  name = collect.metric_of(records)
  out = []
  for axis in ablations.axes():
    if not axis.changes_compute:
      continue
    lines = curves(records, axis, metric)
    if not lines:
      continue
    fig, (ax,) = style.figure(1, width=7.0, height=5.0)
    for i, (label, pts) in enumerate(lines.items()):
      x = np.array([p[1] for p in pts])
      y = np.array([p[2] for p in pts])
      color = style.cycle(i)
      if any(p[4] > 1 for p in pts):
        ax.errorbar(x, y, yerr=[p[3] for p in pts], fmt="none", ecolor=color, lw=0.8,
                    alpha=0.6)
      (line,) = ax.plot(x, y, color=color, marker="o", ms=4, lw=1.3,
                        label=f"{label} (n={max(p[4] for p in pts)})")
      line.set_gid(f"along:{label}")
      for value, xi, yi, *_ in pts:
        ax.annotate(axis.token(value), (xi, yi), textcoords="offset points", xytext=(3, 4),
                    fontsize=7, color=color)
    style.madds_axis(ax, [p[1] for pts in lines.values() for p in pts])
    ax.set_ylabel(style.value_label(name))
    ax.set_title(f"{axis.title} along each curve ({metric} {collect.metric_label(name)}, "
                 "mean ± std over seeds)")
    ax.legend(loc="lower right", fontsize=7)
    out.append((f"along_{axis.field}", fig))
  return out
