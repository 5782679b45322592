"""Compile time of the initial state (`train_state.create`) by the PRNG that draws parameters.

Each measurement is a fresh child process with its own empty persistent compile cache. It
jits `train_state.create` for one model, with the parameters drawn by one PRNG implementation:

- `init_prng`: numpy on the host, the default (mnv2_jax/init_prng.py);
- `rbg`: XLA's RngBitGenerator;
- `threefry`: jax's default.

It reports trace+lower and XLA compile seconds, and the compiled program's length in HLO text lines.
The implementations alternate (A B C A B C ...) so that they share the machine's noise.

    python -m benchmarks.init_compile --model classifier --repeats 2
    python -m benchmarks.init_compile --model ssdlite --resolution 128 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

IMPLS = ("init_prng", "rbg", "threefry")


def _model(name: str, width: float, num_classes: int):
  """The model with its `impl` resolved, as the trainers build it."""
  from mnv2_jax import train_state
  from mnv2_jax.models import MobileNetV2
  if name == "classifier":
    return train_state.resolve_impl(
        MobileNetV2(num_classes=num_classes, width_multiplier=width))
  from configs import ssdlite_coco
  from mnv2_jax.train import validate
  model = validate.check_model(ssdlite_coco.get_config(f"width={width}"), num_classes)
  return model.clone(backbone=train_state.resolve_impl(model.backbone))


def _child(args) -> None:
  import jax
  import numpy as np
  import optax
  from mnv2_jax import compile_cache
  from mnv2_jax import init_prng
  from mnv2_jax import train_state
  compile_cache.enable(args.cache_dir)
  impl = {"init_prng": init_prng.IMPL, "rbg": "rbg", "threefry": "threefry2x32"}[args.impl]
  model = _model(args.model, args.width, args.num_classes)
  tx = optax.sgd(0.1, momentum=0.9)
  create = jax.jit(lambda seed: train_state.create(
      model, tx, seed=seed, resolution=args.resolution, ema=True, init_impl=impl))
  t0 = time.perf_counter()
  lowered = create.lower(np.int32(0))
  t1 = time.perf_counter()
  compiled = lowered.compile()
  t2 = time.perf_counter()
  state = jax.block_until_ready(compiled(np.int32(0)))
  t3 = time.perf_counter()
  kernel = max((x for x in jax.tree.leaves(state.params) if x.ndim == 4), key=lambda x: x.size)
  print("RESULT " + json.dumps({
      "trace_lower_s": t1 - t0, "compile_s": t2 - t1, "run_s": t3 - t2,
      "hlo_lines": len(compiled.as_text().splitlines()),
      "largest_kernel_std": float(np.std(kernel))}), flush=True)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--model", choices=("classifier", "ssdlite"), default="classifier")
  p.add_argument("--width", type=float, default=0.35)
  p.add_argument("--resolution", type=int, default=32)
  p.add_argument("--num_classes", type=int, default=10)
  p.add_argument("--repeats", type=int, default=2)
  p.add_argument("--json_out", default=None)
  p.add_argument("--no_markdown", action="store_true")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
  p.add_argument("--cache_dir", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.child:
    _child(args)
    return 0

  from benchmarks import common
  info = common.machine_info(with_torch=False)
  results = {impl: [] for impl in IMPLS}
  for _ in range(args.repeats):
    for impl in IMPLS:
      with tempfile.TemporaryDirectory(prefix="mnv2_init_cc_") as cache:
        cmd = [sys.executable, "-m", "benchmarks.init_compile", "--child", "--impl", impl,
               "--cache_dir", cache, "--model", args.model, "--width", str(args.width),
               "--resolution", str(args.resolution), "--num_classes", str(args.num_classes)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
      res = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])
      res.update(bench="init_compile", impl=impl, model=args.model, width=args.width,
                 resolution=args.resolution, **info)
      common.emit(res, args.json_out)
      results[impl].append(res)
  if not args.no_markdown:
    def med(impl, key):
      return statistics.median(r[key] for r in results[impl])
    rows = [(impl, f"{med(impl, 'trace_lower_s'):.2f}", f"{med(impl, 'compile_s'):.2f}",
             f"{min(r['compile_s'] for r in results[impl]):.2f}-"
             f"{max(r['compile_s'] for r in results[impl]):.2f}",
             int(med(impl, "hlo_lines")), f"{med(impl, 'largest_kernel_std'):.4f}")
            for impl in IMPLS]
    common.append_markdown(
        f"Compile time of train_state.create, {args.model} {args.width} @{args.resolution}, "
        "by the PRNG that draws the parameters", info,
        ("init PRNG", "trace+lower s", "XLA compile s (median)", "range", "compiled HLO lines",
         "std of the largest kernel"), rows,
        notes=[f"{args.repeats} alternating repeats, each a fresh process with an empty "
               "compile cache", "SGD momentum + EMA state, as a training run creates it"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
