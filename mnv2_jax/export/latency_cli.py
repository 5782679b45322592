"""`mnv2-latency`: TF-Lite (XNNPACK) latency of the released configurations and Fig. 6 variants.

    mnv2-latency --out=latency.json                       # 22 released + 3 variants at 1.0/224
    mnv2-latency --points=0.35/96,1.0/224 --variants_at=none --threads=1 --repeats=20

Exports every target (`mnv2_jax.export.latency`), then times them interleaved at each thread
count, and writes one JSON (machine, versions, command, rows) and prints a markdown table
(median ms and quartiles, with exact MAdds). Flags are checked before anything is exported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from mnv2_jax.export import latency
from mnv2_jax.export.machine import machine


def _points(text: str):
  if text == "none":
    return []
  return [latency.parse_point(p) for p in text.split(",") if p]


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-latency", description=__doc__.splitlines()[0])
  p.add_argument("--points", default="released",
                 help="WIDTH/RES,... at the baseline block, or 'released' (the 22 checkpoints)")
  p.add_argument("--variants_at", default="1.0/224",
                 help="WIDTH/RES,... where every Fig. 6 variant is timed too, or 'none'")
  p.add_argument("--threads", default=f"1,{os.cpu_count()}", help="thread counts, e.g. 1,4")
  p.add_argument("--warmup", type=int, default=10, help="untimed rounds")
  p.add_argument("--repeats", type=int, default=100, help="timed rounds (one invoke each)")
  p.add_argument("--out", default="latency.json", help="JSON output path")
  p.add_argument("--plot_dir", default=None,
                 help="also write latency_vs_madds.{png,svg} there (mnv2_jax.plots.latency)")
  return p.parse_args(argv)


def check_args(args):
  """(points, variants_at, threads) or ValueError naming the flag, before any export."""
  points = None if args.points == "released" else _points(args.points)
  variants_at = _points(args.variants_at)
  threads = latency.parse_threads(args.threads)
  for flag, value, low in (("--warmup", args.warmup, 0), ("--repeats", args.repeats, 1)):
    if value < low:
      raise ValueError(f"{flag} must be an integer >= {low}, got {value}")
  if points == [] and not variants_at:
    raise ValueError("nothing to time: --points and --variants_at are both empty")
  return points, variants_at, threads


def markdown(rows: list[dict]) -> str:
  threads = sorted({r["threads"] for r in rows})
  head = ("| config | MAdds (M) | params (M) | "
          + " | ".join(f"{t} thread{'s' if t > 1 else ''}: median ms [q1, q3]" for t in threads)
          + " |")
  lines = [head, "|" + "---|" * (3 + len(threads))]
  for name in dict.fromkeys(r["name"] for r in rows):
    by_t = {r["threads"]: r for r in rows if r["name"] == name}
    r0 = next(iter(by_t.values()))
    cells = [f"{by_t[t]['median_ms']:.2f} [{by_t[t]['q1_ms']:.2f}, {by_t[t]['q3_ms']:.2f}]"
             for t in threads]
    lines.append(f"| {name} | {r0['madds'] / 1e6:.1f} | {r0['params'] / 1e6:.2f} | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv=None) -> dict:
  args = parse_args(argv)
  points, variants_at, threads = check_args(args)
  targets = latency.targets(points, variants_at)
  t0 = time.time()
  blobs = {t.name: latency.export(t) for t in targets}
  export_s = time.time() - t0
  t0 = time.time()
  times = latency.measure(blobs, {t.name: t.resolution for t in targets}, threads,
                          args.warmup, args.repeats)
  result = {"command": " ".join(["mnv2-latency"] + list(argv if argv is not None
                                                        else sys.argv[1:])),
            "machine": machine(), "threads": list(threads), "warmup": args.warmup,
            "repeats": args.repeats, "export_s": round(export_s, 1),
            "measure_s": round(time.time() - t0, 1),
            "rows": latency.rows(targets, times, {k: len(v) for k, v in blobs.items()})}
  if args.plot_dir:
    from mnv2_jax.plots import latency as latency_plot  # pylint: disable=g-import-not-at-top
    os.makedirs(args.plot_dir, exist_ok=True)
    result["plots"] = latency_plot.save(result["rows"], args.plot_dir)
  tmp = f"{args.out}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(result, f, indent=1)
  os.replace(tmp, args.out)
  print(markdown(result["rows"]))
  print(f"# {len(targets)} models, exported in {export_s:.0f} s, timed in "
        f"{result['measure_s']:.0f} s -> {args.out}")
  return result


def run():
  try:
    main()
  except ValueError as e:
    print(f"mnv2-latency: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  run()
