"""One prepared device check: correctness, training smoke, throughput and depthwise timings.

    python -m benchmarks.device_check --out DIR            # on the GPU machine (5-6.5 min)
    python -m benchmarks.device_check --tiny --out DIR     # CPU, tiny sizes (CI): 46 s on the
                                                           # 2-core box idle, 76 s beside
                                                           # other runs, 133 s at load 4-5

Sections, in order of value, each with its own time budget (checked between units of work; a
unit already started, such as a compilation, finishes):

1. ``correctness`` (gating): logits and gradients of all six bottleneck-activation x shortcut
   variants of MobileNetV2 at two sizes, and of MobileNetV1, fp32 on the accelerator vs the host
   CPU; bf16 vs fp32 on the accelerator (`benchmarks.device_correctness`);
2. ``smoke`` (gating): a few hundred steps of the real train step (paper optimizer, EMA) on a
   fixed synthetic stream; the loss must fall, nothing may be NaN;
3. ``throughput``: MobileNetV2 training and inference, JAX vs PyTorch channels_last + AMP,
   eager and `torch.compile`, alternating (`benchmarks.device_speed`);
4. ``depthwise``: the `benchmarks.depthwise_micro` layer shapes, forward / input-grad /
   weight-grad, JAX's formulations vs PyTorch (cuDNN on a GPU).

Results go to ``DIR/device_check.json`` (rewritten after every section) and
``DIR/device_check.md`` (one section appended as each finishes), so a run cut short keeps what
it measured. A failing section records its error and the next one runs. Exit status: 0 when
every gating section passed, 1 when one failed (or errored), 2 with ``--require_torch`` when
PyTorch is missing (the PyTorch parts then report "torch missing").

Nothing on this module's import path needs TensorFlow, TFDS, ml-collections or wandb (the GPU
machine has none of them; tests/benchmarks/test_device_check.py imports it with them blocked).
`XLA_PYTHON_CLIENT_PREALLOCATE=false` is set before JAX starts a backend, so JAX and PyTorch
share the GPU in one process.
"""

from __future__ import annotations

import os

# Before any JAX backend starts: JAX must not take 75% of the GPU, PyTorch needs room too.
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # pylint: disable=g-import-not-at-top,wrong-import-position
import sys
import time


from benchmarks import common, depthwise_micro, device_correctness, device_report, device_speed
from mnv2_jax import models, optim, steps, train_state  # pylint: disable=unused-import

SECTIONS = ("correctness", "smoke", "throughput", "depthwise")
GATING = ("correctness", "smoke")

FULL = {
    "name": "full",
    "num_classes": 1000,
    "correctness_sizes": ((0.35, 96, 16), (1.0, 224, 8)),
    "v1_size": (1.0, 224, 8),
    "bf16_size": (1.0, 224, 8),
    "smoke": {"width": 1.0, "resolution": 224, "batch": 64, "dtype": "bfloat16",
              "num_classes": 10, "steps": 300, "stream_batches": 8, "min_steps": 100,
              "max_last_over_first": 0.8},
    "throughput": {"width": 1.0, "resolution": 224, "batch": 256, "dtype": "bfloat16",
                   "modes": ("train", "infer"),
                   "torch_variants": (("compile+cl+amp", "inductor"), ("eager+cl+amp", None)),
                   "torch_compile_estimate_s": {"train": 90.0, "infer": 40.0},
                   "timing_estimate_s": 15.0, "warmup": 3, "steps": 10, "repeats": 5,
                   "torch_threads": None},
    "depthwise": {"shapes": depthwise_micro.SHAPES, "batch": 64, "dtype": "bfloat16",
                  "impls": ("xla", "taps_vjp"), "torch_layouts": ("nchw", "channels_last"),
                  "warmup": 3, "steps": 10, "repeats": 5},
    "eval_mode_cases": "all",
    "cpu_compiler_options": None,
    "budgets_s": {"correctness": 90.0, "smoke": 35.0, "throughput": 220.0, "depthwise": 25.0},
}
"""The GPU run: at most ~370 s of section budgets + ~20 s of start-up (expected ~5-6 min; the
budgets are caps, checked between units); run it under a 450 s limit."""

TINY = {
    "name": "tiny",
    "num_classes": 10,
    "correctness_sizes": ((0.35, 32, 8),),
    "v1_size": (0.25, 32, 8),
    "bf16_size": (0.35, 32, 8),
    "smoke": {"width": 0.35, "resolution": 32, "batch": 8, "dtype": "float32",
              "num_classes": 10, "steps": 40, "stream_batches": 4, "min_steps": 20,
              "max_last_over_first": 0.9},
    # float32: PyTorch's bf16 convolutions on a CPU without bf16 units run ~10x slower.
    "throughput": {"width": 0.35, "resolution": 32, "batch": 4, "dtype": "float32",
                   "modes": ("train", "infer"),
                   # Dynamo capture only: inductor's C++ codegen takes minutes on a small CPU.
                   "torch_variants": (("compile+cl+amp", "eager"), ("eager+cl+amp", None)),
                   "torch_compile_estimate_s": {"train": 5.0, "infer": 5.0},
                   "timing_estimate_s": 2.0, "warmup": 1, "steps": 2, "repeats": 2,
                   # One thread: two OpenMP threads on a shared box whose other core is busy
                   # wait at every op's barrier (measured: 6.3 s per training step, not 0.05).
                   "torch_threads": 1},
    "depthwise": {"shapes": ((16, 8, 1), (16, 8, 2)), "batch": 2, "dtype": "float32",
                  "impls": ("xla", "taps_vjp"), "torch_layouts": ("nchw", "channels_last"),
                  "warmup": 1, "steps": 2, "repeats": 2},
    # Inference-mode gradients for the first variant (and the bf16 case) only, and XLA:CPU at
    # LLVM -O0 with its elemental emitters instead of the fusion emitters: compiling
    # MobileNetV2 gradients is most of a tiny run's time on a small CPU (one variant's check
    # program: 4.2-5.3 s at -O0 alone, 2.0-2.3 s with both). CPU compilations only; both
    # sides of every comparison and the smoke and throughput steps get the same options.
    "eval_mode_cases": "first",
    "cpu_compiler_options": {"xla_backend_optimization_level": 0,
                             "xla_cpu_use_fusion_emitters": False},
    # Generous caps (a shared 2-core CI box can be 2-3x slower than an idle one): the CI test
    # needs every unit to run. Measured times: benchmarks/RESULTS.md, "Running on a GPU".
    "budgets_s": {"correctness": 240.0, "smoke": 120.0, "throughput": 180.0, "depthwise": 60.0},
}


def full_counts(plan: dict) -> dict:
  """`plan` (tiny sizes) with the full run's counts: as many correctness programs (two sizes),
  smoke steps, timing warm-ups/steps/repeats and depthwise shapes. Times the full run's
  structure on a CPU (benchmarks/RESULTS.md, "Running on a GPU")."""
  out = dict(plan, name=plan["name"] + "+full_counts",
             correctness_sizes=((0.35, 32, 8), (0.5, 32, 8)))
  out["smoke"] = dict(plan["smoke"], **{k: FULL["smoke"][k] for k in (
      "steps", "stream_batches", "min_steps", "max_last_over_first")})
  out["throughput"] = dict(plan["throughput"], **{k: FULL["throughput"][k] for k in (
      "warmup", "steps", "repeats")})
  out["depthwise"] = dict(plan["depthwise"], shapes=tuple((16, 8, st) for st in (1, 2, 1, 2)),
                          **{k: FULL["depthwise"][k] for k in ("warmup", "steps", "repeats")})
  out["budgets_s"] = {k: 2 * v for k, v in plan["budgets_s"].items()}
  return out


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--out", required=True, help="output folder (created)")
  p.add_argument("--tiny", action="store_true", help="tiny sizes and step counts (CPU, CI)")
  p.add_argument("--sections", default=",".join(SECTIONS),
                 help=f"comma list of sections to run, in this order: {','.join(SECTIONS)}")
  p.add_argument("--full_counts", action="store_true",
                 help="with --tiny: the full run's step counts and program count at tiny sizes")
  p.add_argument("--budget_scale", type=float, default=1.0,
                 help="multiply every section's time budget")
  p.add_argument("--require_torch", action="store_true",
                 help="exit 2 when PyTorch cannot be imported (CI: the bench extra is installed)")
  p.add_argument("--cache_dir", default=None,
                 help="JAX persistent compilation cache (default: $MNV2_JAX_CACHE_DIR; for the "
                      "full run otherwise /tmp/mnv2_jax_device_check_cache, which a rerun on "
                      "the same warm machine reuses)")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  plan = dict(TINY if args.tiny else FULL)
  if args.full_counts:
    if not args.tiny:
      raise SystemExit("--full_counts goes with --tiny")
    plan = full_counts(plan)
  wanted = [s for s in args.sections.split(",") if s]
  unknown = sorted(set(wanted) - set(SECTIONS))
  if unknown:
    raise SystemExit(f"unknown --sections {unknown}; choose from {SECTIONS}")
  cache = args.cache_dir or os.environ.get("MNV2_JAX_CACHE_DIR") or (
      None if args.tiny else "/tmp/mnv2_jax_device_check_cache")
  if cache:
    from mnv2_jax import compile_cache  # pylint: disable=g-import-not-at-top
    compile_cache.enable(cache)
  plan["compile_threads"] = max(1, min(8, common.usable_cpus()))
  plan["sections"] = [s for s in SECTIONS if s in wanted]
  plan["compile_cache_dir"] = cache
  have_torch, torch_note = device_speed.torch_available()
  t0 = time.perf_counter()
  env = device_report.environment(with_torch=have_torch)
  env["torch_status"] = torch_note
  env["startup_s"] = time.perf_counter() - t0
  report = device_report.Report(args.out, env, plan)
  print(f"[device_check] {plan['name']} plan on {env['jax_device']} "
        f"({env.get('nvidia_smi') or env['cpu']}); torch: {torch_note}; out: {args.out}",
        flush=True)
  budgets = {k: v * args.budget_scale for k, v in plan["budgets_s"].items()}
  runners = {
      "correctness": lambda sec: device_correctness.correctness(sec, plan, models),
      "smoke": lambda sec: device_correctness.smoke(sec, plan, models),
      "throughput": lambda sec: device_speed.throughput(sec, plan, models),
      "depthwise": lambda sec: device_speed.depthwise(sec, plan),
  }
  for name in plan["sections"]:
    device_report.run_section(report, name, budgets[name], name in GATING, runners[name])
  report.finish()
  failed = report.doc["failed_checks"]
  print(f"[device_check] done in {report.elapsed():.1f} s; failed checks: {failed or 'none'}; "
        f"files: {report.json_path}, {report.md_path}", flush=True)
  if failed:
    return 1
  if args.require_torch and not have_torch:
    print(f"[device_check] --require_torch: {torch_note}", file=sys.stderr, flush=True)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
