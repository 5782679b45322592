"""First vs cached compile time of the MobileNet training step (two fresh processes).

The parent process creates an empty cache directory (or uses ``--cache_dir``), then starts the
same child twice. Each child enables `mnv2_jax.compile_cache`, builds the jitted, donated
training step of `benchmarks.bench` and reports how long tracing + lowering and XLA compilation
took, and how many persistent-cache hits JAX recorded (``/jax/compilation_cache/cache_hits``
monitoring events). The first child compiles and writes the cache; the second should load it.

    python -m benchmarks.compile_time --resolution 224 --batch 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


def _child(args) -> None:
  import jax
  from benchmarks import bench, common
  from mnv2_jax import compile_cache
  from mnv2_jax.models import MobileNetV2
  hits = []
  jax.monitoring.register_event_listener(
      lambda event, **kw: hits.append(event) if event.endswith("/cache_hits") else None)
  compile_cache.enable(args.cache_dir)
  from mnv2_jax.ops.impl import Impl
  model = MobileNetV2(width_multiplier=args.width, dtype=args.dtype,
                      impl=Impl(depthwise=args.depthwise_impl))
  n_before = len(hits)  # Hits of the init program compiled inside make_jax_train don't count.
  _, meta = bench.make_jax_train(model, args.batch, args.resolution, 1000,
                                 compiler_options=common.parse_compiler_options(
                                     args.compiler_option))
  print("RESULT " + json.dumps({**meta, "cache_hits_total": len(hits) - n_before}), flush=True)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--depthwise_impl", default="auto")
  p.add_argument("--cache_dir", default=None, help="default: a fresh temporary directory")
  p.add_argument("--compiler_option", action="append", default=None, metavar="KEY=VALUE",
                 help="XLA DebugOptions override (repeatable), e.g. "
                      "xla_backend_optimization_level=1")
  p.add_argument("--json_out", default=None)
  p.add_argument("--no_markdown", action="store_true")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.child:
    _child(args)
    return 0

  from benchmarks import common
  from mnv2_jax.ops import depthwise as dw_ops
  info = common.machine_info(with_torch=False)
  tmp = None
  if args.cache_dir is None:
    tmp = tempfile.TemporaryDirectory(prefix="mnv2_cc_")
    args.cache_dir = tmp.name
  child = [sys.executable, "-m", "benchmarks.compile_time", "--child",
           "--width", str(args.width), "--resolution", str(args.resolution),
           "--batch", str(args.batch), "--dtype", args.dtype,
           "--depthwise_impl", args.depthwise_impl, "--cache_dir", args.cache_dir]
  for opt in args.compiler_option or ():
    child += ["--compiler_option", opt]
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  results = []
  for run in ("first", "cached"):
    out = subprocess.run(child, capture_output=True, text=True, cwd=root, check=True).stdout
    res = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
    res.update(run=run, bench="compile_time", width=args.width, resolution=args.resolution,
               batch=args.batch, dtype=args.dtype,
               depthwise_impl=dw_ops.resolve_impl(args.depthwise_impl),
               cache_files=len(os.listdir(args.cache_dir)), **info)
    common.emit(res, args.json_out)
    results.append(res)
  if tmp is not None:
    tmp.cleanup()
  if not args.no_markdown:
    rows = [(r["run"], f"{r['trace_lower_s']:.2f}", f"{r['compile_s']:.2f}",
             f"{r['trace_lower_s'] + r['compile_s']:.2f}", r["cache_hits_total"])
            for r in results]
    common.append_markdown(
        f"Compile time, MobileNetV2 {args.width} train step @{args.resolution}, batch "
        f"{args.batch}, {args.dtype}, depthwise {results[0]['depthwise_impl']}", info,
        ("process", "trace+lower s", "XLA compile s", "total s", "cache hits"), rows,
        notes=["two fresh processes sharing one empty persistent-cache directory",
               f"JAX compiler options: {args.compiler_option or '(default)'}"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
