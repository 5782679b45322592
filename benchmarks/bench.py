"""Training-step and inference throughput of MobileNet in JAX/Flax and PyTorch, side by side.

Every requested variant (one JAX run per ``--depthwise_impl`` and one PyTorch run per
configuration) is built first, then all are timed in alternation (A B C A B C ...; see
`benchmarks.common`) so their ratios are measured under the same background load.

Training step (both frameworks): forward in train mode (batch-norm batch statistics, running
averages updated, dropout on), softmax cross entropy with label smoothing 0.1, backward, SGD with
momentum 0.9 and weight decay 4e-5. JAX: one jitted function with the state buffers donated;
parameters float32, compute in ``--dtype`` (bf16 compute + f32 master weights on GPU). PyTorch:
eager or ``torch.compile``d, NCHW or channels_last (``--torch_variants``), and for bfloat16
``torch.autocast`` (AMP). The first PyTorch variant is the reference of the "vs torch" column.
Inputs are synthetic and already on the device; labels random. Inference: eval mode (running
statistics), logits only.

Examples:

    python -m benchmarks.bench --resolution 96 --batch 32 --depthwise_impl xla,taps,taps_vjp
    python -m benchmarks.bench --resolution 224 --batch 256 --dtype bfloat16 \\
        --torch_variants eager+cl,compile+cl          # on a GPU machine

Output: one JSON line per measurement (stdout and ``--json_out``) and a Markdown table appended
to ``benchmarks/RESULTS.md`` (``--no_markdown`` to skip).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import common
from mnv2_jax import losses, parallel
from mnv2_jax.models import MODELS
from mnv2_jax.ops.impl import Impl

LABEL_SMOOTHING = 0.1
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 4e-5


# ----------------------------------------------------------------------------------------------
# JAX


def synthetic_batch(batch: int, resolution: int, num_classes: int, seed: int = 0):
  """A random float32 NHWC image batch and int32 labels, drawn by numpy and put on the device.

  Drawn on the host rather than with `jax.random`: the values do not matter for timing, and
  each `jax.random` sampler is a compilation of its own (~1-2 s on XLA:CPU on a small box).
  """
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((batch, resolution, resolution, 3), np.float32)
  y = rng.integers(0, num_classes, (batch,)).astype(np.int32)
  return jax.device_put(x), jax.device_put(y)


def init_variables(model, x, seed: int = 0, variables: dict | None = None) -> dict:
  """`variables` when given (e.g. drawn by numpy, which compiles nothing), else the model's own
  initialization, jitted, for input `x`."""
  if variables is not None:
    return jax.device_put(variables)
  return jax.jit(functools.partial(model.init, train=False))(jax.random.key(seed), x)


def make_jax_train(model, batch: int, resolution: int, num_classes: int, seed: int = 0,
                   compiler_options: dict | None = None, mesh=None,
                   variables: dict | None = None):
  """Returns (step_fn, timings): a closure running one donated, jitted training step.

  ``compiler_options`` are XLA DebugOptions overrides for this one compilation (the same
  names as XLA_FLAGS without the dashes), so variants can be compared in one process.
  ``mesh``: a one-axis ``data`` mesh to run data-parallel on, as training does (batch sharded,
  state replicated); None runs on the default device. ``variables``: the starting
  ``{"params", "batch_stats"}`` (default: ``model.init``, see `init_variables`).
  """
  rng = jax.random.key(seed)
  x, y = synthetic_batch(batch, resolution, num_classes, seed)
  variables = init_variables(model, x, seed, variables)
  tx = optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), optax.sgd(LR, momentum=MOMENTUM))
  # Jitted: one small program, where eager `tx.init` compiles one per parameter shape.
  state = {"params": variables["params"], "batch_stats": variables["batch_stats"],
           "opt_state": jax.jit(tx.init)(variables["params"]),
           "step": jnp.zeros((), jnp.int32)}
  if mesh is not None:
    x, y = jax.device_put((x, y), parallel.batch_sharding(mesh))
    state = jax.device_put(state, parallel.replicated(mesh))

  def train_step(state, x, y):
    def loss_fn(params):
      logits, upd = model.apply(
          {"params": params, "batch_stats": state["batch_stats"]}, x, train=True,
          mutable=["batch_stats"], rngs={"dropout": jax.random.fold_in(rng, state["step"])})
      loss = losses.cross_entropy(logits, y, num_classes=num_classes,
                                  label_smoothing=LABEL_SMOOTHING)
      return loss, upd["batch_stats"]
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "batch_stats": batch_stats, "opt_state": opt_state,
            "step": state["step"] + 1}, loss

  t0 = time.perf_counter()
  lowered = jax.jit(train_step, donate_argnums=(0,)).lower(state, x, y)
  t1 = time.perf_counter()
  compiled = lowered.compile(compiler_options)
  t2 = time.perf_counter()
  box = [state]

  def step():
    box[0], loss = compiled(box[0], x, y)
    jax.block_until_ready((box[0], loss))  # The whole updated state, not just the loss.

  step.compiled = compiled  # For HLO inspection and profiling (benchmarks/profile_step.py).
  return step, {"trace_lower_s": t1 - t0, "compile_s": t2 - t1}


def make_jax_infer(model, batch: int, resolution: int, seed: int = 0,
                   compiler_options: dict | None = None, variables: dict | None = None):
  """Returns (step_fn, timings): one jitted eval-mode forward pass (``variables``: as
  `make_jax_train`'s)."""
  x, _ = synthetic_batch(batch, resolution, 1, seed)
  variables = init_variables(model, x, seed, variables)
  t0 = time.perf_counter()
  lowered = jax.jit(functools.partial(model.apply, train=False)).lower(variables, x)
  t1 = time.perf_counter()
  compiled = lowered.compile(compiler_options)
  t2 = time.perf_counter()

  def step():
    compiled(variables, x).block_until_ready()

  step.compiled = compiled  # As make_jax_train's (memory analysis in benchmarks/device_speed.py).
  return step, {"trace_lower_s": t1 - t0, "compile_s": t2 - t1}


# ----------------------------------------------------------------------------------------------
# PyTorch


def _torch_setup(args, channels_last: bool):
  import torch
  from benchmarks import torch_mobilenet
  device = "cuda" if torch.cuda.is_available() else "cpu"
  builder = {"mobilenet_v2": torch_mobilenet.mobilenet_v2,
             "mobilenet_v1": torch_mobilenet.mobilenet_v1}[args.model]
  torch.manual_seed(0)
  net = builder(args.width, args.resolution, args.num_classes).to(device)
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  net = net.to(memory_format=fmt)
  x = torch.randn(args.batch, 3, args.resolution, args.resolution, device=device)
  x = x.contiguous(memory_format=fmt)
  y = torch.randint(0, args.num_classes, (args.batch,), device=device)
  amp = args.dtype != "float32"
  amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(args.dtype)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
  return torch, net, x, y, device, amp, amp_dtype, sync


def make_torch_train(args, compile_: bool, channels_last: bool):
  """Returns (step_fn, timings) for one eager (or compiled) PyTorch training step."""
  torch, net, x, y, device, amp, amp_dtype, sync = _torch_setup(args, channels_last)
  net.train()
  fwd = torch.compile(net) if compile_ else net
  opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
  loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)

  def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=device, dtype=amp_dtype, enabled=amp):
      loss = loss_fn(fwd(x).float(), y)
    loss.backward()
    opt.step()
    sync()

  t0 = time.perf_counter()
  step()  # First call: includes torch.compile's compilation when enabled.
  return step, {"first_step_s": time.perf_counter() - t0}


def make_torch_infer(args, compile_: bool, channels_last: bool):
  """Returns (step_fn, timings) for one PyTorch eval-mode forward pass."""
  torch, net, x, _, device, amp, amp_dtype, sync = _torch_setup(args, channels_last)
  net.eval()
  fwd = torch.compile(net) if compile_ else net

  def step():
    with torch.inference_mode(), torch.autocast(device_type=device, dtype=amp_dtype,
                                                enabled=amp):
      fwd(x)
    sync()

  t0 = time.perf_counter()
  step()
  return step, {"first_step_s": time.perf_counter() - t0}


def torch_variants(args) -> list[tuple[bool, bool]]:
  """(compile, channels_last) pairs from ``--torch_variants`` and the shortcut flags."""
  out = []
  for spec in args.torch_variants.split(","):
    parts = set(spec.split("+"))
    unknown = parts - {"eager", "compile", "cl"}
    if unknown:
      raise ValueError(f"unknown --torch_variants token(s) {sorted(unknown)} in {spec!r}")
    out.append(("compile" in parts or args.torch_compile,
                "cl" in parts or args.torch_channels_last))
  return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------------------------


def _torch_label(args, compile_: bool, channels_last: bool) -> str:
  parts = ["compile" if compile_ else "eager"]
  if channels_last:
    parts.append("channels_last")
  if args.dtype != "float32":
    parts.append(f"amp_{args.dtype}")
  return "torch " + "+".join(parts)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--model", default="mobilenet_v2", choices=tuple(MODELS))
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--num_classes", type=int, default=1000)
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                 help="JAX compute dtype (params stay float32); PyTorch autocast dtype")
  p.add_argument("--depthwise_impl", default="auto",
                 help="comma list of JAX depthwise implementations to time (auto, xla, taps, ...)")
  p.add_argument("--modes", default="train,infer", help="comma list of train, infer")
  p.add_argument("--frameworks", default="jax,torch", help="comma list of jax, torch")
  p.add_argument("--torch_variants", default="eager",
                 help="comma list of PyTorch configurations, tokens joined by '+': eager or "
                      "compile, optionally cl (channels_last), e.g. 'eager,eager+cl,compile+cl'")
  p.add_argument("--torch_compile", action="store_true", help="add torch.compile to every "
                 "--torch_variants entry")
  p.add_argument("--torch_channels_last", action="store_true",
                 help="add channels_last to every --torch_variants entry")
  p.add_argument("--torch_threads", type=int, default=None,
                 help="torch.set_num_threads (default: the CPUs this process may use)")
  p.add_argument("--compiler_option", action="append", default=None, metavar="KEY=VALUE",
                 help="XLA DebugOptions override for the JAX compilations (repeatable), e.g. "
                      "xla_backend_optimization_level=1")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
  p.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
  p.add_argument("--repeats", type=int, default=5, help="alternating repeats; median reported")
  p.add_argument("--json_out", default=None)
  p.add_argument("--no_markdown", action="store_true")
  p.add_argument("--title", default=None, help="Markdown section title")
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  frameworks = args.frameworks.split(",")
  use_torch = "torch" in frameworks
  if use_torch:
    import torch
    torch.set_num_threads(args.torch_threads or common.usable_cpus())
  info = common.machine_info(with_torch=use_torch)
  from mnv2_jax.ops import depthwise as dw_ops
  copts = common.parse_compiler_options(args.compiler_option)
  info["compiler_options"] = copts
  rows = []
  for mode in args.modes.split(","):
    fns, meta = {}, {}
    if "jax" in frameworks:
      for impl in args.depthwise_impl.split(","):
        model = MODELS[args.model](width_multiplier=args.width, num_classes=args.num_classes,
                                   dtype=args.dtype, impl=Impl(depthwise=impl))
        name = f"jax {impl}" + (f" (={dw_ops.resolve_impl(impl)})" if impl == "auto" else "")
        if mode == "train":
          fns[name], meta[name] = make_jax_train(model, args.batch, args.resolution,
                                                 args.num_classes, compiler_options=copts)
        else:
          fns[name], meta[name] = make_jax_infer(model, args.batch, args.resolution,
                                                 compiler_options=copts)
    if use_torch:
      for compile_, channels_last in torch_variants(args):
        name = _torch_label(args, compile_, channels_last)
        make = make_torch_train if mode == "train" else make_torch_infer
        fns[name], meta[name] = make(args, compile_, channels_last)
    timed = common.time_alternating(fns, warmup=args.warmup, steps=args.steps,
                                    repeats=args.repeats)
    ref = next((n for n in timed if n.startswith("torch")), None)
    for name, per_rep in timed.items():
      s = common.summarize(per_rep)
      img_s = args.batch / s["median_s"]
      ratio = (common.summarize(timed[ref])["median_s"] / s["median_s"]) if ref else None
      common.emit({"bench": "throughput", "mode": mode, "variant": name, "model": args.model,
                   "width": args.width, "resolution": args.resolution, "batch": args.batch,
                   "dtype": args.dtype, "img_per_s": img_s, "speed_vs_torch": ratio,
                   "per_repeat_s": per_rep, **s, **meta[name], **info}, args.json_out)
      compile_s = meta[name].get("compile_s", meta[name].get("first_step_s"))
      rows.append((mode, name, f"{img_s:.1f}",
                   f"{args.batch / s['max_s']:.1f}-{args.batch / s['min_s']:.1f}",
                   f"{s['median_s'] * 1e3:.0f}", f"{ratio:.2f}x" if ratio else "-",
                   f"{compile_s:.1f}"))
  if not args.no_markdown:
    title = args.title or (f"{args.model} {args.width} @{args.resolution}, batch {args.batch}, "
                           f"{args.dtype}")
    common.append_markdown(
        title, info,
        ("mode", "variant", "img/s (median)", "img/s range", "ms/step", "vs torch",
         "compile s (JAX) / first step s (torch)"), rows,
        notes=[f"JAX compiler options: {copts or '(default)'}",
               f"alternating timing: {args.warmup} warm-up steps, {args.repeats} repeats x "
               f"{args.steps} steps; 'vs torch' = torch median step time / this median"])
  return 0


if __name__ == "__main__":
  sys.exit(main())
