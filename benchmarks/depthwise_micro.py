"""Micro-benchmark of one 3x3 depthwise layer: forward, input-grad and weight-grad, timed apart.

Each JAX implementation of `mnv2_jax.ops.depthwise` and PyTorch (NCHW and channels_last) run
alternately in one process (see `benchmarks.common.time_alternating`), on the MobileNetV2 1.0
layer shapes where depthwise work is largest. The gradient passes are isolated: "dx" computes
only the input gradient and "dw" only the weight gradient (JAX: jitted VJP with the other
output dropped, so XLA removes it; PyTorch: `autograd.grad` w.r.t. one tensor only).

    python -m benchmarks.depthwise_micro --batch 32 --dtype float32
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from mnv2_jax.ops import depthwise as dw_ops

# (channels, spatial size, stride): MobileNetV2 1.0 @224 layers with the most depthwise work.
SHAPES = ((144, 56, 1), (144, 56, 2), (576, 14, 1), (576, 14, 2))
PASSES = ("fwd", "dx", "dw")


def _jax_fns(impl: str, x, k, g, stride: int) -> dict:
  """Jitted forward / input-grad / weight-grad closures for one implementation."""
  def fwd(x, k):
    return dw_ops.depthwise_conv(x, k, stride, impl)

  f = jax.jit(fwd)
  dx = jax.jit(lambda x, k, g: jax.vjp(lambda x: fwd(x, k), x)[1](g)[0])
  dw = jax.jit(lambda x, k, g: jax.vjp(lambda k: fwd(x, k), k)[1](g)[0])
  return {"fwd": lambda: f(x, k).block_until_ready(),
          "dx": lambda: dx(x, k, g).block_until_ready(),
          "dw": lambda: dw(x, k, g).block_until_ready()}


def _torch_fns(x_np, k_np, g_np, stride: int, channels_last: bool, dtype: str) -> dict:
  """The same three passes in PyTorch with TF SAME padding (explicit asymmetric pad)."""
  import torch
  import torch.nn.functional as F
  tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  device = "cuda" if torch.cuda.is_available() else "cpu"
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  c = x_np.shape[-1]

  def to_torch(a, perm):
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(*perm))).to(device=device, dtype=tdt)
    return t.contiguous(memory_format=fmt)

  x, w, g = to_torch(x_np, (0, 3, 1, 2)), to_torch(k_np, (3, 2, 0, 1)), to_torch(g_np, (0, 3, 1, 2))
  (pt, pb), (pl, pr) = (dw_ops.same_padding(x.shape[2], 3, stride),
                        dw_ops.same_padding(x.shape[3], 3, stride))

  def conv(x, w):
    if pt == pb and pl == pr:
      return F.conv2d(x, w, stride=stride, padding=(pt, pl), groups=c)
    return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, stride=stride, groups=c)

  xr, wr = x.detach().requires_grad_(True), w.detach().requires_grad_(True)

  def fwd():
    with torch.no_grad():
      conv(x, w)
    sync()

  def dx():
    torch.autograd.grad(conv(xr, w), xr, g)
    sync()

  def dw():
    torch.autograd.grad(conv(x, wr), wr, g)
    sync()

  return {"fwd": fwd, "dx": dx, "dw": dw}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--shapes", default="all",
                 help="comma list of C:H:S (e.g. 144:56:1) or 'all' for the MobileNetV2 set")
  p.add_argument("--impls", default=",".join(dw_ops.IMPLEMENTATIONS))
  p.add_argument("--torch", default="nchw,channels_last",
                 help="PyTorch layouts to include: nchw, channels_last, or 'none'")
  p.add_argument("--warmup", type=int, default=3)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--json_out", default=None)
  p.add_argument("--no_markdown", action="store_true", help="do not append to RESULTS.md")
  args = p.parse_args(argv)

  torch_layouts = [] if args.torch == "none" else args.torch.split(",")
  if torch_layouts:
    import torch
    torch.set_num_threads(common.usable_cpus())
  info = common.machine_info(with_torch=bool(torch_layouts))
  shapes = SHAPES if args.shapes == "all" else tuple(
      tuple(int(v) for v in s.split(":")) for s in args.shapes.split(","))
  impls = args.impls.split(",")
  jdt = jnp.dtype(args.dtype)

  rows = []
  for c, hw, stride in shapes:
    rng = np.random.default_rng(0)
    ho = -(-hw // stride)
    x_np = rng.standard_normal((args.batch, hw, hw, c), np.float32)
    k_np = rng.standard_normal((3, 3, 1, c), np.float32) * 0.3
    g_np = rng.standard_normal((args.batch, ho, ho, c), np.float32)
    x, k, g = (jax.device_put(jnp.asarray(a, jdt)) for a in (x_np, k_np, g_np))
    fns = {impl: _jax_fns(impl, x, k, g, stride) for impl in impls}
    for layout in torch_layouts:
      fns[f"torch_{layout}"] = _torch_fns(x_np, k_np, g_np, stride,
                                          layout == "channels_last", args.dtype)
    for pass_name in PASSES:
      timed = common.time_alternating({n: f[pass_name] for n, f in fns.items()},
                                      warmup=args.warmup, steps=args.steps,
                                      repeats=args.repeats)
      for name, per_rep in timed.items():
        s = common.summarize(per_rep)
        common.emit({"bench": "depthwise_micro", "impl": name, "pass": pass_name,
                     "channels": c, "size": hw, "stride": stride, "batch": args.batch,
                     "dtype": args.dtype, **s, **info}, args.json_out)
        rows.append((f"{c}ch {hw}x{hw} s{stride}", pass_name, name,
                     f"{s['median_s'] * 1e3:.2f}", f"{s['min_s'] * 1e3:.2f}"))
  if not args.no_markdown:
    common.append_markdown(
        f"Depthwise 3x3 micro-benchmark (batch {args.batch}, {args.dtype})", info,
        ("layer", "pass", "impl", "median ms", "min ms"), rows,
        notes=[f"alternating A/B timing, {args.warmup} warm-up calls, {args.repeats} repeats "
               f"of {args.steps} calls each; median of the per-repeat means"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
