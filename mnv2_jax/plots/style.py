"""Matplotlib set-up shared by the figures: headless backend, paper-like style, PNG+SVG saving."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # Headless: never needs a display; set before pyplot is imported.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.ticker as mticker  # pylint: disable=g-import-not-at-top,wrong-import-position

from mnv2_jax.results import collect  # pylint: disable=g-import-not-at-top,wrong-import-position

RESOLUTION_CMAP = "viridis"
MAX_DATA_TICKS = 8  # `madds_axis`: up to this many distinct MAdds, ticks at the data
# Fixed styles of the paper's variants (series names, `ablations.variant`); others cycle.
VARIANT_MARKERS = {"linear/bottleneck": "s", "relu6/bottleneck": "^", "linear/expansion": "D",
                   "linear/none": "v", "relu6/expansion": "P", "relu6/none": "X", "v1": "o"}
VARIANT_COLORS = {"linear/bottleneck": "tab:blue", "relu6/bottleneck": "tab:green",
                  "linear/expansion": "tab:orange", "linear/none": "tab:red",
                  "relu6/expansion": "tab:purple", "relu6/none": "tab:brown", "v1": "tab:gray"}
RC = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
      "axes.spines.right": False, "legend.frameon": False, "figure.dpi": 100,
      "savefig.dpi": 150, "svg.hashsalt": "mnv2_jax"}  # Fixed SVG ids: reproducible files.


def marker(variant: str) -> str:
  return VARIANT_MARKERS.get(variant, "*")


def color(variant: str) -> str:
  if variant in VARIANT_COLORS:
    return VARIANT_COLORS[variant]
  return cycle(sum(map(ord, variant)))  # Stable per name, across figures and runs.


def cycle(i: int) -> str:
  """The i-th colour of the tab10 cycle (skipping the grey that MobileNetV1 uses)."""
  palette = [c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]][:10]
  palette = [c for c in palette if c != "#7f7f7f"] or ["black"]
  return palette[i % len(palette)]


def figure(ncols: int = 1, width: float = 5.0, height: float = 3.6):
  """A new figure with ``ncols`` panels in the project style."""
  with plt.rc_context(RC):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False,
                             layout="constrained")
  for ax in axes[0]:
    ax.grid(True, alpha=0.3)
    for side in ("top", "right"):
      ax.spines[side].set_visible(False)
  return fig, list(axes[0])


def madds_axis(ax, madds, label: str = "Multiply-Adds, Millions", data_ticks: bool = True
               ) -> None:
  """A log x axis of MAdds (millions; or another cost, named by `label`) with plain-number
  labels that do not overlap.

  Matplotlib labels every minor tick of a log axis spanning less than a decade, in scientific
  notation ("2.2x10^0 2.4x10^0 ..."), which runs together. With at most `MAX_DATA_TICKS`
  distinct values the ticks sit at the data's MAdds (a Pareto plot of a few operating points);
  otherwise at matplotlib's log positions, labelled plainly, minor ticks unlabelled. With
  ``data_ticks=False`` (measured costs, whose values crowd) six evenly spaced ticks.
  """
  ax.set_xscale("log")
  ax.set_xlabel(label)
  values = sorted({float(v) for v in madds if v and v > 0})
  plain = mticker.FuncFormatter(lambda v, _: plain_number(v))
  if data_ticks and 0 < len(values) <= MAX_DATA_TICKS:
    ax.xaxis.set_major_locator(mticker.FixedLocator(values))
  elif not data_ticks:  # measured costs: close, unrounded values; evenly spaced plain ticks
    ax.xaxis.set_major_locator(mticker.MaxNLocator(6))
  ax.xaxis.set_major_formatter(plain)
  ax.xaxis.set_minor_formatter(mticker.NullFormatter())


def value_label(metric: str, top1: str = "Accuracy, Top 1, %") -> str:
  """The y label of a metric in percent: the figure's own top-1 wording for the classifier
  (`top1`), "mAP, %" / "mIoU, %" for the others (the name from the runs' summaries)."""
  return top1 if metric == collect.TOP1 else f"{metric}, %"


def value_title(metric: str) -> str:
  """What a title calls the metric: "Accuracy" for top-1, else its name ("mAP")."""
  return "Accuracy" if metric == collect.TOP1 else metric


def plain_number(v: float) -> str:
  """1.2, 2.78, 56.3, 300, 1000: three significant digits, never scientific notation."""
  return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def save(fig, out_dir: str, stem: str) -> list[str]:
  """Writes ``<stem>.png`` and ``<stem>.svg``, closes the figure, returns both paths."""
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  with plt.rc_context(RC):
    for ext in ("png", "svg"):
      path = os.path.join(out_dir, f"{stem}.{ext}")
      fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
      paths.append(path)
  plt.close(fig)
  return paths
