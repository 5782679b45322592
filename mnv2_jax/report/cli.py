"""`mnv2-report`: a sweep dir's tables, figures and W&B report run in one go.

    mnv2-report runs/sweeps/fig6_pareto.digits
    mnv2-report SWEEP_DIR --metric best --wandb_mode offline

Runs `mnv2-results --claims` (tables and claims.md into SWEEP_DIR/results), `mnv2-plot`
(figures into SWEEP_DIR/plots) and logs one W&B run with `job_type="report"` holding both
(`mnv2_jax.report.wandb_report`; offline when there is no login). `mnv2-sweep --report` calls
it after a sweep. Exit code 1 if the sweep dir holds no runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mnv2_jax.plots import cli as plots_cli
from mnv2_jax.report import wandb_report
from mnv2_jax.results import claims as claims_lib
from mnv2_jax.results import cli as results_cli
from mnv2_jax.results import collect
from mnv2_jax.results import stats


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-report", description=__doc__.split("\n\n")[0])
  p.add_argument("sweep_dir")
  p.add_argument("--metric", choices=("final", "best"), default="final")
  p.add_argument("--wandb_mode", default="auto", help="auto|online|offline|disabled")
  return p.parse_args(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  rc = results_cli.main([args.sweep_dir, "--metric", args.metric, "--claims"])
  if rc:
    return rc
  rc = plots_cli.main([args.sweep_dir, "--metric", args.metric])
  if rc:
    return rc
  records = collect.collect(args.sweep_dir)
  tables = results_cli.build_by_metric(records, args.metric, {}, stats.DEFAULT_CONFIDENCE,
                                       stats.DEFAULT_BOOTSTRAP)
  claims = results_cli.build_claims(records, [args.sweep_dir], args.metric,
                                    claims_lib.DEFAULT_MARGIN, stats.DEFAULT_CONFIDENCE,
                                    stats.DEFAULT_BOOTSTRAP)
  out = os.path.join(args.sweep_dir, "results")
  run_dir = wandb_report.log_report(records, tables, out=out,
                                    mode=args.wandb_mode, metric=args.metric, claims=claims)
  print(f"# W&B report run: {run_dir}", file=sys.stderr)
  return 0


def run() -> None:
  """Console-script entry point."""
  sys.exit(main())


if __name__ == "__main__":
  run()
