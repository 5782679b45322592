"""Where the JAX training step spends its time: per-op profile grouped by layer kind and pass.

Runs a few training steps of `benchmarks.bench` under ``jax.profiler.trace`` with XLA:CPU's
per-thunk trace events switched on (``--xla_cpu_enable_xprof_traceme``, added to XLA_FLAGS by
this script before JAX starts), reads the trace back with ``jax.profiler.ProfileData`` and maps
every executed HLO instruction to the ``op_name`` metadata of the compiled module, e.g.
``.../block_3/depthwise/conv/slice``. Time is summed per (layer kind, sub-op, forward/backward).

    python -m benchmarks.profile_step --resolution 96 --batch 32 --depthwise_impl taps_vjp

Times are thread-time summed over XLA's worker threads, per step. On GPU the same trace holds
the device kernels; this grouping only reads the host (CPU) thunk lines.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import sys
import tempfile

KINDS = ("depthwise", "expand", "project", "stem", "head", "logits")


def _categorize(op_name: str) -> tuple[str, str, str]:
  parts = op_name.split("/")
  kind = next((k for k in KINDS if k in parts), "other")
  sub = "bn" if "/bn/" in op_name else ("conv" if "/conv/" in op_name else parts[-1])
  return kind, sub, "bwd" if "transpose(" in op_name else "fwd"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=96)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--dtype", default="float32")
  p.add_argument("--depthwise_impl", default="auto")
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--top", type=int, default=25)
  args = p.parse_args(argv)
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_cpu_enable_xprof_traceme=true").strip()
  import jax
  from jax.profiler import ProfileData
  from benchmarks import bench
  from mnv2_jax.models import MobileNetV2

  from mnv2_jax.ops.impl import Impl
  model = MobileNetV2(width_multiplier=args.width, dtype=args.dtype,
                      impl=Impl(depthwise=args.depthwise_impl))
  step, _ = bench.make_jax_train(model, args.batch, args.resolution, 1000)
  op_names = dict(re.findall(r'^\s*%?([\w.\-]+) = .*?metadata=\{op_name="([^"]+)"',
                             step.compiled.as_text(), re.M))
  step()
  with tempfile.TemporaryDirectory() as tmp:
    with jax.profiler.trace(tmp):
      for _ in range(args.steps):
        step()
    trace = sorted(glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True))[-1]
    data = ProfileData.from_file(trace)
    totals, wall = collections.Counter(), 0
    for plane in data.planes:
      for line in plane.lines:
        for ev in line.events:
          if ev.name.endswith(" step") and line.name == "python":
            wall += ev.duration_ns
          if "XLAEigen" not in line.name or ev.name not in op_names:
            continue
          totals[_categorize(op_names[ev.name])] += ev.duration_ns
  per_step = args.steps * 1e6
  print(f"wall ms/step (python step call): {wall / per_step:.1f}")
  print(f"op thread-time ms/step: {sum(totals.values()) / per_step:.1f}")
  for (kind, sub, direction), ns in totals.most_common(args.top):
    print(f"{ns / per_step:9.1f} ms  {kind:10s} {sub:12s} {direction}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
