"""What each CPU speed-up in the model buys: the JAX training step with pieces switched off.

Every variant is the same MobileNetV2 training step (`bench.make_jax_train`) traced with some of
the performance pieces replaced by their plain alternative, all built in one process and timed
in alternation (A B C A B C ...), so the ratios share the machine's load:

  all              the code as shipped (model.impl all "auto"; on CPU: native depthwise +
                   native BN sums + pointwise VJP)
  no_native_bn     batch-norm reductions left to XLA (impl.batchnorm="xla")
  no_pointwise     1x1 convs as a plain dot_general (impl.pointwise="dot"; XLA picks which
                   gradient operand to transpose)
  flax_bn          flax.linen.BatchNorm + clip instead of the folded multiply-add
                   (impl.batchnorm="flax")
  taps_vjp         impl.depthwise="taps_vjp" (pure XLA) instead of the native kernels
  baseline         all of the above off at once (the previous state of the code)
  accelerator      what GPUs/TPUs run: XLA depthwise, XLA batch norm, plain pointwise (opt-in)
  mesh             "all", data-parallel on a mesh of --mesh_devices CPU devices (opt-in)
  mesh_gathered    "mesh" with impl.partition="gathered": the SPMD partitioner gathers every
                   native call's operands and runs it on the whole batch on every device (opt-in)

    python -m benchmarks.step_ablation --resolution 96 --batch 32
    python -m benchmarks.step_ablation --variants all,no_pointwise --repeats 8
    python -m benchmarks.step_ablation --variants all,mesh,mesh_gathered --mesh_devices 2

Every variant is selected through the model's typed implementation choice
(`mnv2_jax.ops.impl.Impl`), exactly as `--config.model.impl.*` selects it for training.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from benchmarks import bench, common

# name -> (model.impl fields, runs on a mesh)
VARIANTS = {
    "all": ({}, False),
    "no_native_bn": ({"batchnorm": "xla"}, False),
    "no_pointwise": ({"pointwise": "dot"}, False),
    "flax_bn": ({"batchnorm": "flax"}, False),
    "taps_vjp": ({"depthwise": "taps_vjp"}, False),
    "baseline": ({"depthwise": "taps_vjp", "batchnorm": "flax", "pointwise": "dot"}, False),
    "accelerator": ({"depthwise": "xla", "batchnorm": "xla", "pointwise": "dot"}, False),
    "mesh": ({}, True),
    "mesh_gathered": ({"partition": "gathered"}, True),
}
OPT_IN = ("accelerator",)
DEFAULT_VARIANTS = tuple(name for name, (_, mesh) in VARIANTS.items()
                         if not mesh and name not in OPT_IN)


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
  from mnv2_jax.ops.impl import Impl
  if any(VARIANTS[name][1] for name in names):
    jax.config.update("jax_num_cpu_devices", args.mesh_devices)  # Before the backend starts.
  info = common.machine_info(with_torch=False)
  fns, meta = {}, {}
  for name in names:
    fields, on_mesh = VARIANTS[name]
    impl = Impl(**fields).resolve()
    model = MobileNetV2(width_multiplier=args.width, impl=impl)
    mesh = parallel.make_mesh() if on_mesh else None
    fns[name], meta[name] = bench.make_jax_train(model, args.batch, args.resolution, 1000,
                                                 mesh=mesh)
    meta[name]["impl"] = impl.describe()
    fns[name]()  # Compile and run once before timing.
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
