"""What each CPU speed-up in the model buys: the JAX training step with pieces switched off.

Every variant is the same MobileNetV2 training step (`bench.make_jax_train`) traced with some of
the performance pieces replaced by their plain alternative, all built in one process and timed
in alternation (A B C A B C ...), so the ratios share the machine's load:

  all              the code as shipped (on CPU: native depthwise + native BN sums + pointwise VJP)
  no_native_bn     batch-norm reductions left to XLA (ops.batchnorm.use_native -> False)
  no_pointwise     1x1 convs as a plain dot_general (XLA picks which gradient operand to transpose)
  flax_bn          flax.linen.BatchNorm + clip instead of ops.batchnorm (folded multiply-add)
  taps_vjp         depthwise_impl="taps_vjp" (pure XLA) instead of the native kernels
  baseline         all of the above off at once (the previous state of the code)
  mesh             "all", data-parallel on a mesh of --mesh_devices CPU devices (opt-in)
  mesh_gathered    "mesh" without ops/native/partition.py: the SPMD partitioner gathers every
                   native call's operands and runs it on the whole batch on every device (opt-in)

    python -m benchmarks.step_ablation --resolution 96 --batch 32
    python -m benchmarks.step_ablation --variants all,no_pointwise --repeats 8
    python -m benchmarks.step_ablation --variants all,mesh,mesh_gathered --mesh_devices 2

The switches are applied by patching module attributes while each variant is traced (the
patched functions are only read at trace time), and undone afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

from benchmarks import bench, common

VARIANTS = {
    "all": (),
    "no_native_bn": ("no_native_bn",),
    "no_pointwise": ("no_pointwise",),
    "flax_bn": ("flax_bn",),
    "taps_vjp": ("taps_vjp",),
    "baseline": ("no_native_bn", "no_pointwise", "flax_bn", "taps_vjp"),
    "mesh": ("mesh",),
    "mesh_gathered": ("mesh", "gathered"),
}
DEFAULT_VARIANTS = tuple(name for name, pieces in VARIANTS.items() if "mesh" not in pieces)


@contextlib.contextmanager
def _switched_off(pieces):
  import flax.linen as nn
  import jax.numpy as jnp
  from jax import lax
  from mnv2_jax.models import layers
  from mnv2_jax.ops import batchnorm as bn_ops
  from mnv2_jax.ops.native import partition

  saved = (bn_ops.use_native, layers.pw_ops, layers.BatchNormAct.__call__, partition.ENABLED)

  class _PlainPointwise:
    @staticmethod
    def pointwise_conv(x, w):
      return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))

  @nn.compact
  def flax_bn(self, x, *, train):
    x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                     epsilon=self.epsilon, dtype=self.dtype, param_dtype=jnp.float32)(x)
    return bn_ops.activate(x, self.activation)

  try:
    if "no_native_bn" in pieces:
      bn_ops.use_native = lambda: False
    if "no_pointwise" in pieces:
      layers.pw_ops = _PlainPointwise
    if "flax_bn" in pieces:
      layers.BatchNormAct.__call__ = flax_bn
    if "gathered" in pieces:
      partition.ENABLED = False
    yield
  finally:
    (bn_ops.use_native, layers.pw_ops, layers.BatchNormAct.__call__,
     partition.ENABLED) = saved


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=96)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
  p.add_argument("--mesh_devices", type=int, default=2,
                 help="CPU devices of the mesh variants' data-parallel mesh")
  p.add_argument("--warmup", type=int, default=1)
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--repeats", type=int, default=6)
  p.add_argument("--json_out", default=None)
  p.add_argument("--no_markdown", action="store_true")
  args = p.parse_args(argv)
  names = args.variants.split(",")
  unknown = sorted(set(names) - set(VARIANTS))
  if unknown:
    p.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")

  import jax
  from mnv2_jax import parallel
  from mnv2_jax.models import MobileNetV2
  if any("mesh" in VARIANTS[name] for name in names):
    jax.config.update("jax_num_cpu_devices", args.mesh_devices)  # Before the backend starts.
  info = common.machine_info(with_torch=False)
  fns, meta = {}, {}
  for name in names:
    pieces = VARIANTS[name]
    impl = "taps_vjp" if "taps_vjp" in pieces else "auto"
    with _switched_off(pieces):
      model = MobileNetV2(width_multiplier=args.width, depthwise_impl=impl)
      mesh = parallel.make_mesh() if "mesh" in pieces else None
      fns[name], meta[name] = bench.make_jax_train(model, args.batch, args.resolution, 1000,
                                                   mesh=mesh)
      fns[name]()  # Trace and run once while the switches are in place.
  timed = common.time_alternating(fns, warmup=args.warmup, steps=args.steps,
                                  repeats=args.repeats)
  ref = statistics.median(timed[names[0]])
  rows = []
  for name, per_rep in timed.items():
    s = common.summarize(per_rep)
    img_s = args.batch / s["median_s"]
    common.emit({"bench": "step_ablation", "variant": name, "img_per_s": img_s,
                 "per_repeat_s": per_rep, "width": args.width, "resolution": args.resolution,
                 "batch": args.batch, **s, **meta[name], **info}, args.json_out)
    rows.append((name, f"{img_s:.1f}", f"{args.batch / s['max_s']:.1f}-"
                 f"{args.batch / s['min_s']:.1f}", f"{s['median_s'] * 1e3:.0f}",
                 f"{ref / s['median_s']:.2f}x", f"{meta[name]['compile_s']:.1f}"))
    print(f"{name:14s} {img_s:7.1f} img/s  ({rows[-1][4]} of {names[0]})", file=sys.stderr)
  if not args.no_markdown:
    common.append_markdown(
        f"Training-step ablation, MobileNetV2 {args.width} @{args.resolution}, batch "
        f"{args.batch}, float32", info,
        ("variant", "img/s (median)", "img/s range", "ms/step", f"speed vs {names[0]}",
         "compile s"), rows,
        notes=[f"alternating timing: {args.warmup} warm-up steps, {args.repeats} repeats x "
               f"{args.steps} steps; variants as in benchmarks/step_ablation.py; "
               f"{jax.device_count()} CPU device(s), mesh variants use all of them"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
