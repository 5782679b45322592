"""`mnv2-complexity`: per-layer table and totals (MAdds, params, memory) for any model variant.

    mnv2-complexity --width 0.35 --resolution 96
    mnv2-complexity --model mobilenet_v1 --width 0.5 --resolution 160 --json
    mnv2-complexity --shortcut expansion --num_classes 1001
    mnv2-complexity --width 1.0 --resolution 224 --depthwise_kernel 5 --json
    mnv2-complexity --inference_split 1,2,4,8      # + eq. (2) peak memory per group count k
    mnv2-complexity --head ssdlite --resolution 320 --num_classes 80 --json     # Table 6
    mnv2-complexity --head ssd --resolution 320 --num_classes 80                # Table 5
    mnv2-complexity --head deeplabv3 --resolution 513 --output_stride 16 --aspp --num_classes 21
    mnv2-complexity --head deeplabv3 --output_stride 8 --multi_scale ...        # Table 7 MF

With `--head`, `--num_classes` is what the head predicts: object classes for ssdlite / ssd
(the background slot is added: 81 outputs per anchor for 80), all classes for deeplabv3 (21
for VOC, background included); the output is the per-part breakdown (`heads_complexity`).

Every ablation axis declared in `mnv2_jax.ablations` is a flag (`--<field>`, default its
baseline); axes of other models are ignored for `--model mobilenet_v1`.
"""

from __future__ import annotations

import argparse
import json
import sys

from mnv2_jax import ablations
from mnv2_jax import complexity
from mnv2_jax import heads_complexity
from mnv2_jax import heads_spec
from mnv2_jax import spec as spec_lib
from mnv2_jax.models import split as split_lib


def _model(args: argparse.Namespace) -> dict:
  return {"name": args.model, "width_multiplier": args.width,
          **{a.field: getattr(args, a.field) for a in ablations.axes()}}


def build_spec(args: argparse.Namespace) -> spec_lib.ArchSpec:
  return spec_lib.from_config(_model(args), args.resolution, args.num_classes,
                              output_stride=args.output_stride)


def build_task(args: argparse.Namespace, resolution: int | None = None):
  """The `heads_spec` task of `--head` (ValueError naming the field on bad settings)."""
  head = {"name": args.head, "aspp": args.aspp, "separable_aspp": args.separable_aspp}
  if args.head in heads_spec.DETECTION_HEADS:
    if args.output_stride not in (None, 32):
      raise ValueError(f"--output_stride {args.output_stride} is not used by --head "
                       f"{args.head}: SSD reads the backbone at strides 16 and 32")
    if args.aspp or args.multi_scale:
      raise ValueError(f"--aspp / --multi_scale are deeplabv3 options, not --head {args.head}")
  else:
    head["output_stride"] = (heads_spec.DEEPLAB_OUTPUT_STRIDE if args.output_stride is None
                             else args.output_stride)
  return heads_spec.from_config(_model(args), head, resolution or args.resolution,
                                args.num_classes)


def format_head_table(c: heads_complexity.HeadComplexity, mf: dict | None) -> str:
  lines = [f"{c.head} on {c.model} width={c.width_multiplier:g} resolution={c.resolution} "
           f"classes={c.num_classes} output_stride={c.output_stride}",
           f"{'part':<14} {'params':>12} {'MAdds':>16} {'MAdds (s2b grid)':>18}"]
  for name, p in c.parts.items():
    lines.append(f"{name:<14} {p.params:>12,} {p.madds:>16,} {p.madds_space_to_batch:>18,}")
  lines.append(f"{'total':<14} {c.params:>12,} {c.madds:>16,} {c.madds_space_to_batch:>18,}")
  lines.append(f"= {c.params / 1e6:.3f} M params, {c.madds / 1e9:.3f} B MAdds "
               f"({c.madds_space_to_batch / 1e9:.3f} B with dilated convs on the "
               "space-to-batch grid)")
  lines.append(", ".join(f"{k}: {v}" for k, v in c.extra.items()))
  if mf:
    lines.append(f"multi-scale x{len(mf['scales'])} scales x {mf['flips']} flips: "
                 f"{mf['madds'] / 1e9:.2f} B MAdds ({mf['madds_space_to_batch'] / 1e9:.2f} B "
                 "on the space-to-batch grid)")
  return "\n".join(lines)


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
  p.add_argument("--output_stride", type=int, default=None,
                 help="dilate instead of stride past this output stride (slim's rule; "
                      "deeplabv3 default 16)")
  p.add_argument("--head", default=None, choices=heads_spec.HEADS,
                 help="count a detection / segmentation system instead of the classifier")
  p.add_argument("--aspp", action="store_true",
                 help="deeplabv3: add ASPP (rates 6,12,18 at OS 16; 12,24,36 at OS 8)")
  p.add_argument("--separable_aspp", action="store_true",
                 help="deeplabv3: ASPP with depthwise-separable instead of regular 3x3 convs")
  p.add_argument("--multi_scale", action="store_true",
                 help="deeplabv3: also the MAdds of multi-scale (0.5..1.75) + flip inference")
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


def head_main(args: argparse.Namespace) -> int:
  try:
    if args.inference_split:
      raise ValueError("--inference_split counts the classifier; drop it with --head")
    c = heads_complexity.analyze(build_task(args))
    mf = (heads_complexity.multi_scale(lambda r: build_task(args, r), args.resolution)
          if args.multi_scale else None)
  except ValueError as e:
    print(f"mnv2-complexity: error: {e}", file=sys.stderr)
    return 2
  if args.json:
    out = c.to_dict()
    if mf:
      out["multi_scale"] = mf
    print(json.dumps(out, indent=1))
  else:
    print(format_head_table(c, mf))
  return 0


def main(argv=None) -> int:
  args = parse_args(argv)
  if args.head:
    return head_main(args)
  if args.aspp or args.separable_aspp or args.multi_scale:
    print("mnv2-complexity: error: --aspp / --separable_aspp / --multi_scale need "
          "--head deeplabv3", file=sys.stderr)
    return 2
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
