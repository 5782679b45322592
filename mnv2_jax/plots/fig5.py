"""Fig. 5 style: the runs' metric vs a cost (log x), colour = resolution, marker = series.

The metric is the runs' own (`collect.RunRecord.metric_name`: top-1, or mAP / mIoU for dense
runs), named on the y axis and in the title; records must share one (`collect.metric_of`;
`mnv2-plot` draws one figure per metric). The paper's points (ImageNet top-1) are drawn on
top-1 figures only.

The cost is one of `results.costs.COSTS`: "madds" (the paper's Fig. 5), or the measured "latency"
and "memory" of `mnv2-measure` (efficiency.json), drawn with the same points and frontier logic.

Each marker is one experiment group (`results.grouping`: everything but the seed equal),
averaged over its finished seeds, with an error bar of the std over seeds when there are
several. Points are joined into one Pareto frontier (`mnv2_jax.results.pareto`) per series: the
compute-neutral design (e.g. "relu6/bottleneck"; axes that change compute, like the expansion
factor, move a point along its series) plus any other setting that varies among the runs;
MobileNetV1 is its own series, the comparator. ``overlay_paper`` adds the 22 released checkpoints
(`mnv2_jax.plots.paper_points`) as hollow grey squares with their frontier dashed. Artists
carry ``gid="points:<series>"``, ``"frontier:<series>"``, ``"points:paper"``,
``"frontier:paper"``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import matplotlib.colors as mcolors
import numpy as np

from mnv2_jax.plots import paper_points
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import costs
from mnv2_jax.results import grouping
from mnv2_jax.results import pareto


@dataclasses.dataclass(frozen=True)
class Point:
  """One plotted experiment: MAdds (millions), its cost on the x axis (`x`, = mmadds for the
  "madds" cost), mean/std of the metric (%) over its n seeds."""
  mmadds: float
  mean: float
  std: float
  n: int
  width: float
  resolution: int
  legend: str
  group: grouping.Group
  x: float = 0.0


def aggregate_points(records: Sequence[collect.RunRecord], metric: str = "final",
                     cost: str = "madds") -> dict[str, list[Point]]:
  """{series: [Point, ...] by cost} over the finished runs that have MAdds and the cost.

  A group's x is the mean of its runs' cost (runs of one group share one architecture, so
  their measured costs are one measurement).
  """
  of = costs.get(cost).of
  groups = [g for g in grouping.groups(records, metric)
            if g.first.madds is not None and all(of(r) is not None for r in g.runs)]
  varying = grouping.varying_settings([r for g in groups for r in g.runs])
  out: dict[str, list[Point]] = collections.defaultdict(list)
  xs = {g.key: float(np.mean([of(r) for r in g.runs])) for g in groups}
  for g in sorted(groups, key=lambda g: (xs[g.key], g.first.madds)):
    values = g.values(metric)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    out[g.series(varying)].append(Point(
        g.first.madds / 1e6, float(np.mean(values)), std, len(values), g.first.width,
        g.first.resolution, g.legend(varying, compute_changing=False), g, xs[g.key]))
  return dict(out)


def figure(records: Sequence[collect.RunRecord], metric: str = "final",
           overlay_paper: bool = False, cost: str = "madds"):
  """The figure, or None when no finished run has both the cost and a metric value.

  `overlay_paper` (the released checkpoints' MAdds and ImageNet top-1) applies to the "madds"
  cost and top-1 runs only: never to an mAP or mIoU figure.
  """
  axis = costs.get(cost)
  points = aggregate_points(records, metric, cost)
  name = collect.metric_of(records)
  overlay_paper = overlay_paper and cost == "madds" and name == collect.TOP1
  if not points and not overlay_paper:
    return None
  paper = paper_points.RELEASED_CHECKPOINTS if overlay_paper else ()
  resolutions = sorted({p.resolution for ps in points.values() for p in ps} |
                       {p.resolution for p in paper})
  norm = mcolors.BoundaryNorm(
      np.append(np.array(resolutions) - 0.5, resolutions[-1] + 0.5), ncolors=256)
  fig, (ax,) = style.figure(1, width=7.0, height=5.0)
  scatter = None
  for series in sorted(points, key=lambda v: (v == "v1", v)):
    pts = points[series]
    x = np.array([p.x for p in pts])
    y = np.array([p.mean for p in pts])
    if any(p.n > 1 for p in pts):
      ax.errorbar(x, y, yerr=[p.std for p in pts], fmt="none", ecolor="0.5", lw=0.8, zorder=1)
    scatter = ax.scatter(x, y, c=[p.resolution for p in pts], cmap=style.RESOLUTION_CMAP,
                         norm=norm, marker=style.marker(series), s=36, edgecolors="black",
                         linewidths=0.5, zorder=3,
                         label=f"{pts[0].legend} (n={max(p.n for p in pts)})")
    scatter.set_gid(f"points:{series}")
    front = pareto.frontier(list(zip(x, y)))
    (line,) = ax.plot(x[front], y[front], color=style.color(series), lw=1.2, zorder=2)
    line.set_gid(f"frontier:{series}")
  if paper:
    px = np.array([p.mmadds for p in paper], dtype=float)
    py = np.array([p.top1 for p in paper])
    sc = ax.scatter(px, py, facecolors="none", edgecolors="0.45", marker="s", s=44,
                    zorder=2, label="paper: released checkpoints (slim README)")
    sc.set_gid("points:paper")
    front = pareto.frontier(list(zip(px, py)))
    (line,) = ax.plot(px[front], py[front], color="0.45", ls="--", lw=1.0, zorder=1)
    line.set_gid("frontier:paper")
  style.madds_axis(ax, [p.x for ps in points.values() for p in ps]
                   + [p.mmadds for p in paper], label=axis.label,
                   data_ticks=cost == "madds")
  ax.set_ylabel(style.value_label(name))
  datasets = sorted({str(r.dataset) for r in records if r.dataset})
  on = f", {', '.join(datasets)}" if datasets else ""
  ax.set_title(f"{style.value_title(name)} vs {axis.title} "
               f"({metric} {collect.metric_label(name)}{on})")
  ax.legend(loc="lower right")
  if scatter is not None:
    bar = fig.colorbar(scatter, ax=ax, ticks=resolutions, pad=0.01)
    bar.set_label("resolution")
  return fig


def frontier_rows(records: Sequence[collect.RunRecord], metric: str = "final",
                  cost: str = "madds") -> list[dict]:
  """The plotted points as rows, each marked whether it is on its series' Pareto frontier in
  that cost (what the W&B report run logs next to the figure). Rows of a measured cost carry
  its column (`Cost.column`) beside "mmadds"; the value columns are named by the metric
  ("top1_mean", "mAP_mean")."""
  axis = costs.get(cost)
  name = collect.metric_of(records)
  rows = []
  for series, pts in sorted(aggregate_points(records, metric, cost).items()):
    front = set(pareto.frontier([(p.x, p.mean) for p in pts]))
    rows += [{"series": series, "mmadds": p.mmadds,
              **({} if cost == "madds" else {axis.column: p.x}),
              f"{name}_mean": p.mean, f"{name}_std": p.std, "n": p.n, "width": p.width,
              "resolution": p.resolution, "on_frontier": i in front}
             for i, p in enumerate(pts)]
  return rows
