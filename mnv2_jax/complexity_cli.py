"""`mnv2-complexity`: per-layer table and totals (MAdds, params, memory) for any model variant.

    mnv2-complexity --width 0.35 --resolution 96
    mnv2-complexity --model mobilenet_v1 --width 0.5 --resolution 160 --json
    mnv2-complexity --shortcut expansion --num_classes 1001
"""

from __future__ import annotations

import argparse
import json
import sys

from mnv2_jax import complexity
from mnv2_jax import spec as spec_lib

MODELS = ("mobilenet_v2", "mobilenet_v1")


def build_spec(args: argparse.Namespace) -> spec_lib.ArchSpec:
  if args.model == "mobilenet_v1":
    return spec_lib.mobilenet_v1_spec(args.width, args.resolution, args.num_classes)
  return spec_lib.mobilenet_v2_spec(
      args.width, args.resolution, args.num_classes, expansion_factor=args.expansion_factor,
      bottleneck_activation=args.bottleneck_activation, shortcut=args.shortcut)


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
  p.add_argument("--model", default="mobilenet_v2", choices=MODELS)
  p.add_argument("--width", type=float, default=1.0, help="width multiplier")
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--num_classes", type=int, default=1000)
  p.add_argument("--expansion_factor", type=float, default=6)
  p.add_argument("--bottleneck_activation", default="linear",
                 choices=spec_lib.BOTTLENECK_ACTIVATIONS)
  p.add_argument("--shortcut", default="bottleneck", choices=spec_lib.SHORTCUTS)
  p.add_argument("--json", action="store_true", help="print JSON instead of a table")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    c = complexity.analyze(build_spec(args))
  except ValueError as e:
    print(f"mnv2-complexity: error: {e}", file=sys.stderr)
    return 2
  print(json.dumps(c.to_dict(), indent=1) if args.json else format_table(c))
  return 0


def run():
  sys.exit(main())


if __name__ == "__main__":
  run()
