"""`mnv2-measure`: attach measured latency and peak memory to trained runs (their efficiency.json).

    mnv2-measure runs/sweeps/fig6a_nonlinearity+fig6b_shortcut.fashion
    mnv2-measure SWEEP_DIR --threads=1,2 --repeats=200 --force
    mnv2-measure runs/digits                        # one run workdir

Each PATH is a sweep dir (its finished runs are measured) or a run workdir (has config.json).
Runs that already have an efficiency.json for their current architecture are skipped unless
``--force``. What is measured and how: `mnv2_jax.export.measure`. `mnv2-sweep --measure` runs
this after a sweep's runs finish, before its report; `mnv2-results`, `mnv2-plot` and
`mnv2-report` then show latency and peak memory beside MAdds. Flags and paths are checked
before anything is exported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from mnv2_jax import run_record
from mnv2_jax.export import latency
from mnv2_jax.export import measure


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-measure", description=__doc__.splitlines()[0])
  p.add_argument("paths", nargs="+", help="sweep dirs or run workdirs")
  p.add_argument("--threads", default="1",
                 help="TF-Lite thread counts, e.g. 1,2; the first is the record's latency_ms")
  p.add_argument("--warmup", type=int, default=5, help="untimed rounds over all models")
  p.add_argument("--repeats", type=int, default=50, help="timed rounds (one invoke each)")
  p.add_argument("--memory_batch", type=int, default=1, help="batch of the peak-memory program")
  p.add_argument("--force", action="store_true", help="re-measure runs that have a record")
  return p.parse_args(list(argv))


def check_args(args) -> tuple[tuple[int, ...], list[str]]:
  """(threads, workdirs) or ValueError naming the flag or path, before any work."""
  threads = latency.parse_threads(args.threads)
  for flag, value, low in (("--warmup", args.warmup, 0), ("--repeats", args.repeats, 1),
                           ("--memory_batch", args.memory_batch, 1)):
    if value < low:
      raise ValueError(f"{flag} must be an integer >= {low}, got {value}")
  workdirs = []
  for path in args.paths:
    if os.path.isfile(os.path.join(path, run_record.CONFIG)):
      workdirs.append(path)
    elif os.path.isdir(path):
      workdirs += measure.finished_runs(path)
    else:
      raise ValueError(f"{path!r} does not exist; allowed: a sweep dir or a run workdir")
  return threads, workdirs


def markdown(runs, effs) -> str:
  lines = ["| run | arch | latency ms, median [q1, q3] | threads | peak memory MB | "
           "measured on run |", "|---|---|---|---|---|---|"]
  for run in runs:
    e = effs[run.workdir]
    lines.append(f"| {run.name} | {e.arch[:8]} | {e.latency_ms:.3f} [{e.latency_q1_ms:.3f}, "
                 f"{e.latency_q3_ms:.3f}] | {e.threads} | {e.peak_memory_bytes / 1e6:.3f} | "
                 f"{e.source_run} |")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    threads, workdirs = check_args(args)
    runs = measure.load_runs(workdirs)
  except ValueError as e:
    print(f"mnv2-measure: error: {e}", file=sys.stderr)
    return 2
  if not runs:
    print(f"mnv2-measure: no finished runs under {' '.join(args.paths)}", file=sys.stderr)
    return 1
  todo = [r for r in runs
          if args.force or run_record.read_efficiency(r.workdir, r.config) is None]
  if not todo:
    print(f"# every one of {len(runs)} runs has a current {run_record.EFFICIENCY} "
          "(--force re-measures)", file=sys.stderr)
    return 0
  t0 = time.time()
  effs = measure.measure(todo, threads=threads, warmup=args.warmup, repeats=args.repeats,
                         memory_batch=args.memory_batch)
  for run in todo:
    run_record.write_efficiency(run.workdir, effs[run.workdir])
  print(markdown(todo, effs))
  print(f"# {len(todo)} runs ({len({e.arch for e in effs.values()})} architectures) measured "
        f"in {time.time() - t0:.0f} s; skipped {len(runs) - len(todo)} with a current record",
        file=sys.stderr)
  return 0


def run() -> None:
  """Console-script entry point."""
  sys.exit(main())


if __name__ == "__main__":
  run()
