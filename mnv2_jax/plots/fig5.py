"""Fig. 5 style: top-1 vs MAdds (log x), colour = resolution, marker = variant/model.

Each marker is one (model, variant, width, resolution), averaged over its finished seeds (error
bar = std over seeds when there are several); each variant gets its Pareto frontier line
(``mnv2_jax.results.pareto``), MobileNetV1 included as the comparator. ``overlay_paper`` adds
the 22 released checkpoints (``mnv2_jax.plots.paper_points``) as hollow grey squares with their
frontier dashed, so a reproduction is judged against the paper's numbers. Artists carry
``gid="points:<variant>"``, ``"frontier:<variant>"``, ``"points:paper"``, ``"frontier:paper"``.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import matplotlib.colors as mcolors
import numpy as np

from mnv2_jax.plots import paper_points
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import pareto
from mnv2_jax.sweeps import runner


def aggregate_points(records: Sequence[collect.RunRecord], metric: str = "final"):
  """{variant: [(mmadds, mean top-1 %, std, n, width, resolution), ...]} over finished runs."""
  groups = collections.defaultdict(list)
  for r in records:
    value = r.metric(metric)
    if r.status == runner.FINISHED and value is not None and r.madds is not None:
      groups[(r.variant, r.width, r.resolution, r.madds)].append(100 * value)
  out = collections.defaultdict(list)
  for (variant, width, res, madds), values in sorted(groups.items(), key=lambda kv: kv[0][3]):
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    out[variant].append((madds / 1e6, float(np.mean(values)), std, len(values), width, res))
  return dict(out)


def figure(records: Sequence[collect.RunRecord], metric: str = "final",
           overlay_paper: bool = False):
  """The figure, or None when no finished run has both MAdds and an accuracy."""
  points = aggregate_points(records, metric)
  if not points and not overlay_paper:
    return None
  paper = paper_points.RELEASED_CHECKPOINTS if overlay_paper else ()
  resolutions = sorted({p[5] for ps in points.values() for p in ps} |
                       {p.resolution for p in paper})
  norm = mcolors.BoundaryNorm(
      np.append(np.array(resolutions) - 0.5, resolutions[-1] + 0.5), ncolors=256)
  fig, (ax,) = style.figure(1, width=7.0, height=5.0)
  scatter = None
  order = sorted(points, key=lambda v: (v == "v1", v != "linear/bottleneck", v))
  for variant in order:
    pts = points[variant]
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    if any(p[3] > 1 for p in pts):
      ax.errorbar(x, y, yerr=[p[2] for p in pts], fmt="none", ecolor="0.5", lw=0.8, zorder=1)
    scatter = ax.scatter(x, y, c=[p[5] for p in pts], cmap=style.RESOLUTION_CMAP, norm=norm,
                         marker=style.marker(variant), s=36, edgecolors="black",
                         linewidths=0.5, zorder=3, label=style.label(variant))
    scatter.set_gid(f"points:{variant}")
    front = pareto.frontier(list(zip(x, y)))
    (line,) = ax.plot(x[front], y[front], color=style.color(variant), lw=1.2, zorder=2)
    line.set_gid(f"frontier:{variant}")
  if paper:
    px = np.array([p.mmadds for p in paper], dtype=float)
    py = np.array([p.top1 for p in paper])
    sc = ax.scatter(px, py, facecolors="none", edgecolors="0.45", marker="s", s=44,
                    zorder=2, label="paper: released checkpoints (slim README)")
    sc.set_gid("points:paper")
    front = pareto.frontier(list(zip(px, py)))
    (line,) = ax.plot(px[front], py[front], color="0.45", ls="--", lw=1.0, zorder=1)
    line.set_gid("frontier:paper")
  ax.set_xscale("log")
  ax.set_xlabel("Multiply-Adds, Millions")
  ax.set_ylabel("Accuracy, Top 1, %")
  datasets = sorted({str(r.dataset) for r in records if r.dataset})
  on = f", {', '.join(datasets)}" if datasets else ""
  ax.set_title(f"Accuracy vs MAdds ({metric} top-1{on})")
  ax.legend(loc="lower right")
  if scatter is not None:
    bar = fig.colorbar(scatter, ax=ax, ticks=resolutions, pad=0.01)
    bar.set_label("resolution")
  return fig
