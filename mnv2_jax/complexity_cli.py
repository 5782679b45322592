"""`mnv2-complexity`: per-layer table and totals (MAdds, params, memory) for any model variant.

    mnv2-complexity --width 0.35 --resolution 96
    mnv2-complexity --model mobilenet_v1 --width 0.5 --resolution 160 --json
    mnv2-complexity --shortcut expansion --num_classes 1001
    mnv2-complexity --width 1.0 --resolution 224 --depthwise_kernel 5 --json
    mnv2-complexity --inference_split 1,2,4,8      # + eq. (2) peak memory per group count k

Every ablation axis declared in `mnv2_jax.ablations` is a flag (`--<field>`, default its
baseline); axes of other models are ignored for `--model mobilenet_v1`.
"""

from __future__ import annotations

import argparse
import json
import sys

from mnv2_jax import ablations
from mnv2_jax import complexity
from mnv2_jax import spec as spec_lib
from mnv2_jax.models import split as split_lib


def build_spec(args: argparse.Namespace) -> spec_lib.ArchSpec:
  model = {"name": args.model, "width_multiplier": args.width,
           **{a.field: getattr(args, a.field) for a in ablations.axes()}}
  return spec_lib.from_config(model, args.resolution, args.num_classes)


def format_table(c: complexity.Complexity) -> str:
  """Human-readable per-layer table followed by the totals."""
  header = f"{'layer':<20} {'op':<9} {'k':>2} {'s':>2} {'input':>13} {'output':>13} " \
           f"{'act':<6} {'MAdds':>12} {'params':>9}  shortcut"
  lines = [header, "-" * len(header)]
  for r in c.rows:
    shape_in = f"{r.in_shape[0]}x{r.in_shape[0]}x{r.in_shape[1]}"
    shape_out = f"{r.out_shape[0]}x{r.out_shape[0]}x{r.out_shape[1]}"
    lines.append(f"{r.path:<20} {r.op:<9} {r.kernel:>2} {r.stride:>2} {shape_in:>13} "
                 f"{shape_out:>13} {r.activation:<6} {r.madds:>12,} {r.params:>9,}  "
                 f"{'+ ' + r.shortcut_from if r.shortcut_from else ''}")
  lines.append("-" * len(header))
  memory = ", ".join(f"{s}x{s}: {ch} ch / {b / 1000:.0f} kB" for s, ch, b in
                     c.memory_by_resolution)
  lines += [
      f"model            {c.model} width={c.width_multiplier:g} resolution={c.resolution} "
      f"classes={c.num_classes}",
      f"MAdds            {c.madds:,} ({c.mmadds} M, floored)",
      f"params           {c.params:,} trainable (incl. BN gamma/beta); "
      f"{c.params_no_bn:,} without BN ({c.params_no_bn / 1e6:.2f} M)",
      f"BN statistics    {c.bn_statistics:,} (non-trainable)",
      f"shortcuts        {c.num_shortcuts}",
      f"activation mem.  {c.activation_memory_bytes / 1000:.0f} kB (paper Table 3, 16-bit); "
      f"{memory}",
  ]
  return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-complexity", description=__doc__.splitlines()[0])
  p.add_argument("--model", default="mobilenet_v2", choices=tuple(spec_lib.SPECS))
  p.add_argument("--width", type=float, default=1.0, help="width multiplier")
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--num_classes", type=int, default=1000)
  for axis in ablations.axes():
    p.add_argument(f"--{axis.field}", type=axis.type, default=axis.baseline,
                   choices=axis.values, help=f"{axis.title} (axis {axis.path})")
  p.add_argument("--inference_split", default="",
                 help="K[,K...]: also the paper's eq. (2) peak activation memory (float32, "
                      "batch 1) of memory-efficient inference with each unit in K groups")
  p.add_argument("--json", action="store_true", help="print JSON instead of a table")
  return p.parse_args(argv)


def split_peaks(arch: spec_lib.ArchSpec, text: str) -> dict[int, int]:
  """{k: eq. (2) bytes} for "1,2,4"; ValueError naming --inference_split on bad values."""
  if not text:
    return {}
  try:
    ks = [int(k) for k in text.split(",")]
  except ValueError:
    raise ValueError(f"--inference_split must be integers >= 1, e.g. 1,2,4; got {text!r}") from None
  if min(ks) < 1:
    raise ValueError(f"--inference_split must be integers >= 1, got {text!r}")
  try:
    for k in ks:
      split_lib.check(arch, k)  # the model's own rule: what it cannot run is not counted
  except ValueError as e:
    raise ValueError(f"--inference_split: {e}") from None
  return {k: complexity.split_inference_peak_bytes(arch, k) for k in ks}


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    arch = build_spec(args)
    c = complexity.analyze(arch)
    peaks = split_peaks(arch, args.inference_split)
  except ValueError as e:
    print(f"mnv2-complexity: error: {e}", file=sys.stderr)
    return 2
  if args.json:
    out = c.to_dict()
    if peaks:
      out["inference_split_peak_bytes"] = {str(k): b for k, b in peaks.items()}
    print(json.dumps(out, indent=1))
  else:
    print(format_table(c))
    for k, b in peaks.items():
      print(f"eq. (2) peak     k={k}: {b / 1e6:.2f} MB (float32, batch 1; memory-efficient "
            "inference, paper §5.1)")
  return 0


def run():
  sys.exit(main())


if __name__ == "__main__":
  run()
