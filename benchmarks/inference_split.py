"""Memory-efficient inference (paper §5.1): XLA's peak temp memory and time per image per k.

    python -m benchmarks.inference_split                       # 1.0/224, k = 1 2 4 8, b 1 + 64
    python -m benchmarks.inference_split --batch 1 --splits 1,4 --repeats 5

For each `MobileNetV2(inference_split=k)` inference forward pass (float32, the model's "auto"
implementation for this backend): `temp_size_in_bytes` of the compiled program's
`memory_analysis()` (XLA's own accounting; parameters, the input and the logits excluded), next
to `complexity.split_inference_peak_bytes` (the paper's eq. (2) under the split schedule, and
with each conv's batch-norm + activation output counted beside the conv's, as XLA:CPU assigns
them), and the median wall time per image over `--repeats` timed calls. The k are run
alternately, repeat by repeat, so a noisy machine slows them alike. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from mnv2_jax import complexity
from mnv2_jax import models


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--batch", default="1,64", help="comma list of batch sizes")
  p.add_argument("--splits", default="1,2,4,8", help="comma list of k")
  p.add_argument("--repeats", type=int, default=7)
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  splits = [int(k) for k in args.splits.split(",")]
  batches = [int(b) for b in args.batch.split(",")]
  rows = []
  for batch in batches:
    x = np.random.default_rng(0).standard_normal(
        (batch, args.resolution, args.resolution, 3)).astype(np.float32)
    progs = {}
    for k in splits:
      model = models.MobileNetV2(width_multiplier=args.width, num_classes=1000,
                                 inference_split=k)
      v = jax.jit(lambda key, m=model: m.init(key, jnp.zeros((1, *x.shape[1:])),
                                              train=False))(jax.random.key(0))
      t0 = time.perf_counter()
      compiled = jax.jit(lambda v, x, m=model: m.apply(v, x, train=False)).lower(v, x).compile()
      arch = model.spec(args.resolution)
      progs[k] = dict(
          fn=compiled, v=v, compile_s=time.perf_counter() - t0,
          temp=compiled.memory_analysis().temp_size_in_bytes,
          eq2=complexity.split_inference_peak_bytes(arch, k, batch),
          eq2_sep=complexity.split_inference_peak_bytes(arch, k, batch,
                                                        separate_activations=True),
          times=[])
      jax.block_until_ready(compiled(v, x))  # Warm-up.
    for _ in range(args.repeats):
      for k in splits:
        p = progs[k]
        t0 = time.perf_counter()
        jax.block_until_ready(p["fn"](p["v"], x))
        p["times"].append(time.perf_counter() - t0)
    base = progs[splits[0]]
    for k in splits:
      p = progs[k]
      ms = statistics.median(p["times"]) / batch * 1e3
      rows.append([batch, k, f"{p['temp'] / 1e6:.2f}", f"{base['temp'] / p['temp']:.2f}x",
                   f"{p['eq2'] / 1e6:.2f}", f"{p['temp'] / p['eq2']:.2f}",
                   f"{p['eq2_sep'] / 1e6:.2f}", f"{p['temp'] / p['eq2_sep']:.2f}",
                   f"{ms:.3f}", f"{p['compile_s']:.1f}"])
  print(f"MobileNetV2 {args.width}/{args.resolution} float32 inference, {jax.devices()[0]}, "
        f"jax {jax.__version__}, {common.usable_cpus()} usable CPUs; median of {args.repeats}")
  print()
  print("| batch | k | XLA temp MB | vs k=1 | eq. (2) MB | XLA / eq. (2) | eq. (2), BN output "
        "apart, MB | XLA / that | ms / image | compile s |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    print("| " + " | ".join(str(c) for c in r) + " |")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
