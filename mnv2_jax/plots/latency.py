"""Measured latency against MAdds (`mnv2-latency --plot_dir`): where MAdds stop predicting time.

One panel per thread count: x = exact MAdds (log), y = median TF-Lite latency (log), whiskers
at the quartiles. The baseline block's points are joined per width multiplier (resolution
moves along the line); the Fig. 6 variants are drawn with their own markers and colours
(`style.VARIANT_*`) at their operating point, where their MAdds equal the baseline's, so any
vertical spread there is time that MAdds do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from mnv2_jax.plots import style

BASELINE = "linear/bottleneck"


def figure(rows: Sequence[dict]):
  threads = sorted({r["threads"] for r in rows})
  fig, axes = style.figure(ncols=len(threads))
  for ax, t in zip(axes, threads):
    mine = [r for r in rows if r["threads"] == t]
    base = [r for r in mine if r["variant"] == BASELINE]
    for i, w in enumerate(sorted({r["width"] for r in base})):
      line = sorted((r for r in base if r["width"] == w), key=lambda r: r["madds"])
      ax.plot([r["madds"] / 1e6 for r in line], [r["median_ms"] for r in line], "-",
              marker=style.marker(BASELINE), ms=3, lw=1, color=style.cycle(i),
              label=f"width {w:g} ({BASELINE})")
    for r in mine:
      lo, hi = r["median_ms"] - r["q1_ms"], r["q3_ms"] - r["median_ms"]
      kw = {} if r["variant"] != BASELINE else {"alpha": 0}
      ax.errorbar([r["madds"] / 1e6], [r["median_ms"]], yerr=[[lo], [hi]], fmt="none",
                  ecolor="black", elinewidth=0.6, **kw)
    for variant in sorted({r["variant"] for r in mine} - {BASELINE}):
      pts = [r for r in mine if r["variant"] == variant]
      ax.plot([r["madds"] / 1e6 for r in pts], [r["median_ms"] for r in pts], "none",
              marker=style.marker(variant), color=style.color(variant), ms=6, label=variant)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("MAdds (millions)")
    ax.set_ylabel("median latency (ms), batch 1")
    ax.set_title(f"TF-Lite XNNPACK, {t} thread{'s' if t > 1 else ''}")
  axes[-1].legend(fontsize=7)
  return fig


def save(rows: Sequence[dict], out_dir: str, stem: str = "latency_vs_madds") -> list[str]:
  return style.save(figure(rows), out_dir, stem)
