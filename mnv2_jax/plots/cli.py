"""`mnv2-plot`: paper-style figures of a sweep dir (PNG + SVG).

    mnv2-plot runs/sweeps/fig6a_nonlinearity+fig6b_shortcut.digits
    mnv2-plot runs/sweeps/fig5_pareto.paper --overlay_paper --metric best

Writes into ``--out`` (default ``SWEEP_DIR/plots``): ``fig5.{png,svg}`` (top-1 vs MAdds, when
any run finished) and ``fig6_<dataset>_w<width>_r<res>.{png,svg}`` (eval top-1 vs step, one per
operating point with at least two variants to compare) and ``along_<axis>.{png,svg}`` (top-1
vs MAdds with a compute-changing axis, e.g. the expansion factor, moving along each curve),
and, for runs measured by ``mnv2-measure``, ``fig5_latency`` and ``fig5_memory`` (top-1 vs
measured TF-Lite latency and vs XLA peak inference memory, with Fig. 5's frontier logic).

Every figure is of one metric: a sweep dir holding detection (mAP) or segmentation (mIoU) runs
gets their figures with the metric's name as suffix (``fig5_mAP``, ``fig6_..._mAP``,
``along_expansion_factor_mAP``; `collect.metric_suffix`), beside the top-1 ones, which keep their
names; runs of different metrics never share a figure. ``--overlay_paper`` applies to top-1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mnv2_jax.plots import along
from mnv2_jax.plots import fig5
from mnv2_jax.plots import fig6
from mnv2_jax.plots import style
from mnv2_jax.results import collect
from mnv2_jax.results import costs


def render_all(records: Sequence[collect.RunRecord], out: str, *, metric: str = "final",
               overlay_paper: bool = False, band: str = "minmax") -> list[str]:
  """Writes every figure the records support, each metric's apart; returns the written paths."""
  paths = []
  for name, runs in collect.by_metric(records).items():
    suffix = collect.metric_suffix(name)
    fig = fig5.figure(runs, metric=metric, overlay_paper=overlay_paper)
    if fig is not None:
      paths += style.save(fig, out, f"fig5{suffix}")
    for cost in costs.measured_present(runs):
      fig = fig5.figure(runs, metric=metric, cost=cost)
      if fig is not None:
        paths += style.save(fig, out, f"fig5_{cost}{suffix}")
    for stem, fig in fig6.figures(runs, band=band):
      paths += style.save(fig, out, f"{stem}{suffix}")
    for stem, fig in along.figures(runs, metric=metric):
      paths += style.save(fig, out, f"{stem}{suffix}")
  return paths


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-plot", description=__doc__.split("\n\n")[0])
  p.add_argument("sweep_dir")
  p.add_argument("--out", default=None, help="output dir (default SWEEP_DIR/plots)")
  p.add_argument("--metric", choices=("final", "best"), default="final",
                 help="the runs' final or best value of their metric (top-1, mAP, mIoU)")
  p.add_argument("--overlay_paper", action="store_true",
                 help="add the 22 released checkpoints (paper Fig. 5 points, ImageNet top-1) "
                      "to the top-1 fig5")
  p.add_argument("--band", choices=fig6.BANDS, default="minmax",
                 help="seed band of the Fig. 6 curves")
  return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    records = collect.collect(args.sweep_dir)
  except FileNotFoundError as e:
    print(f"mnv2-plot: {e}", file=sys.stderr)
    return 1
  out = args.out or os.path.join(args.sweep_dir, "plots")
  paths = render_all(records, out, metric=args.metric, overlay_paper=args.overlay_paper,
                     band=args.band)
  if not paths:
    print(f"mnv2-plot: nothing to plot in {args.sweep_dir} ({len(records)} runs)",
          file=sys.stderr)
    return 1
  print("\n".join(paths))
  return 0


def run() -> None:
  """Console-script entry point."""
  sys.exit(main())


if __name__ == "__main__":
  run()
