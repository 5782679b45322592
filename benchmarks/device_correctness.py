"""The gating sections of `benchmarks.device_check`: accelerator-vs-CPU correctness and a
training smoke run.

Correctness. For every (model, size, dtype) case one jitted program computes, from the same
float32 parameters and inputs: the training-mode loss, logits, updated batch statistics and
parameter gradients (batch norm on batch statistics), and the inference-mode logits and
gradients (running statistics). It runs on the accelerator (`jax.devices()[0]`, the formulation
"auto" picks there: XLA's grouped convolution and batch norm) and on the host CPU
(`jax.devices("cpu")[0]`, the CPU's "auto": native kernels, else `taps_vjp`), float32 under
`jax.default_matmul_precision("highest")`, and the results are compared leaf by leaf. Errors
are relative to the compared tree's scale:

    rel_l2  = ||a - b||_2 / ||b||_2        over all leaves together
    max_rel = max |a - b| / max |b|        (one global scale, since some gradients are zero in
                                            theory and per-leaf ratios would compare noise)

Tolerances (`TOLERANCES`): inference mode is tight. Training mode is looser for the deep
gradients: at random init the last stages' batch norms see near-constant inputs and divide by
tiny standard deviations, so round-off from a different summation order grows layer after layer
(tests/ops/test_impl.py measured ~3% of the largest gradient between two CPU formulations at
64x64, batch 8). bf16 compute is compared with the float32 accelerator result on the same
inputs, gated on its inference-mode outputs and batch statistics (see `TOLERANCES`). Every run
also plants a mismatch of 1% of the scale in one gradient leaf and checks that the comparison
rejects it (the `selftest` case), so a passing result cannot come from a comparison that
compares nothing.

Training smoke: the real `mnv2_jax.steps.make_train_step` (paper optimizer: TF RMSProp, staircase
decay, L2, label smoothing, EMA) on a fixed stream of synthetic, learnable batches; the loss must
fall and every loss, gradient norm and EMA leaf must stay finite.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import device_report
from mnv2_jax import losses
from mnv2_jax.ops.impl import Impl

# The accelerator formulation (what "auto" resolves to off the CPU), used on both sides so the
# two backends compute the same program.
ACCEL_IMPL = Impl(depthwise="xla", batchnorm="xla", pointwise="dot", partition="sharded")
VARIANTS = tuple((act, sc) for act in ("linear", "relu6")
                 for sc in ("bottleneck", "expansion", "none"))
"""The six bottleneck_activation x shortcut combinations of MobileNetV2 (Fig. 6)."""

# (rel_l2, max_rel) per compared output; None: compared and reported, not gated.
TOLERANCES = {
    "fp32": {"train_loss": (1e-4, 1e-4), "train_logits": (1e-3, 1e-3),
             "batch_stats": (1e-3, 1e-3), "train_grads": (5e-2, 5e-2),
             "eval_logits": (2e-4, 2e-4), "eval_grads": (1e-3, 1e-3)},
    # bf16: training-mode outputs are reported, not gated (None): at random init the deep
    # batch norms amplify bf16's 3-digit round-off without bound on small inputs (measured at
    # 0.35/32, batch 8: train logits rel-L2 0.58, train gradients 1.35, loss 4.6%), while the
    # inference-mode ones stay close (logits 1.9e-2, gradients 9.6e-2).
    "bf16": {"train_loss": None, "train_logits": None, "batch_stats": (1e-1, 1e-1),
             "train_grads": None, "eval_logits": (1e-1, 1e-1), "eval_grads": (2e-1, 2e-1)},
}
SELFTEST_PLANT = 1e-2  # Planted error, as a fraction of max |gradient|.
SAME_DEVICE_NOTE = ("CPU-only machine: each case's program is compiled once and its executable "
                    "run for both sides, so the fp32 errors are 0 by construction")
"""What the report says of the host side when the accelerator is the host CPU."""


# ----------------------------------------------------------------------------------------------
# Comparison


def compare(a, b) -> dict:
  """Errors of tree `a` against reference tree `b` (same structure), see module docstring."""
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  if len(la) != len(lb):
    raise ValueError(f"trees differ: {len(la)} vs {len(lb)} leaves")
  fa = [np.asarray(x, np.float64).ravel() for x in la]
  fb = [np.asarray(x, np.float64).ravel() for x in lb]
  diff2 = sum(float(np.sum((x - y) ** 2)) for x, y in zip(fa, fb))
  ref2 = sum(float(np.sum(y ** 2)) for y in fb)
  scale = max(float(np.max(np.abs(y))) if y.size else 0.0 for y in fb)
  per_leaf = [float(np.max(np.abs(x - y))) if y.size else 0.0 for x, y in zip(fa, fb)]
  worst = int(np.argmax(per_leaf)) if per_leaf else 0
  finite = all(bool(np.all(np.isfinite(x))) for x in fa)
  return {"rel_l2": math.sqrt(diff2 / ref2) if ref2 > 0 else (0.0 if diff2 == 0 else math.inf),
          "max_rel": max(per_leaf) / scale if scale > 0 else (0.0 if max(per_leaf) == 0
                                                              else math.inf),
          "ref_norm": math.sqrt(ref2), "ref_scale": scale, "leaves": len(fb),
          "elements": int(sum(y.size for y in fb)), "worst_leaf": worst, "finite": finite}


def check(errors: dict, tol: tuple[float, float]) -> bool:
  """Passes when finite, non-trivial (the reference is not all zeros) and within `tol`."""
  return (errors["finite"] and errors["ref_scale"] > 0 and errors["rel_l2"] <= tol[0]
          and errors["max_rel"] <= tol[1])


def compare_outputs(out: dict, ref: dict, tolerances: dict) -> tuple[bool, dict]:
  """Compares every output of a check program; returns (all passed, {output: errors})."""
  res, ok = {}, True
  for key, tol in tolerances.items():
    err = compare(out[key], ref[key])
    err["tol"] = tol
    err["passed"] = check(err, tol) if tol is not None else None
    ok &= err["passed"] is not False
    res[key] = err
  return ok, res


def plant_mismatch(grads, fraction: float = SELFTEST_PLANT):
  """`grads` with `fraction * max|grads|` added to one element of its largest leaf."""
  leaves, treedef = jax.tree.flatten(grads)
  leaves = [np.array(x) for x in leaves]
  scale = max(float(np.max(np.abs(x))) for x in leaves)
  big = int(np.argmax([x.size for x in leaves]))
  flat = leaves[big].reshape(-1)
  flat[flat.size // 2] += fraction * scale
  return jax.tree.unflatten(treedef, leaves)


# ----------------------------------------------------------------------------------------------
# Check programs


def _check_fn(model, num_classes: int, eval_mode: bool = True):
  def fn(params, batch_stats, x, y):
    def train_loss(p):
      logits, upd = model.apply({"params": p, "batch_stats": batch_stats}, x, train=True,
                                mutable=["batch_stats"])
      loss = losses.cross_entropy(logits, y, num_classes=num_classes, label_smoothing=0.1)
      return loss, (logits, upd["batch_stats"])

    def eval_loss(p):
      logits = model.apply({"params": p, "batch_stats": batch_stats}, x, train=False)
      return losses.cross_entropy(logits, y, num_classes=num_classes, label_smoothing=0.1), logits

    (tl, (tlog, stats)), tg = jax.value_and_grad(train_loss, has_aux=True)(params)
    out = {"train_loss": tl, "train_logits": tlog, "batch_stats": stats, "train_grads": tg}
    if eval_mode:
      (_, elog), eg = jax.value_and_grad(eval_loss, has_aux=True)(params)
      out.update(eval_logits=elog, eval_grads=eg)
    return out
  return fn


def numpy_variables(model, resolution: int, seed: int = 0) -> dict:
  """Initial variables drawn with numpy in the layout `model.init` gives (traced, not compiled).

  Kernels: slim's init (truncated normal, stddev 0.09; truncated at 2 stddev by clipping);
  batch-norm scale and running variance 1, biases and running means 0. An XLA:CPU compilation of
  `model.init` takes 5-15 s on a 2-core box, and the check needs one per parameter layout.
  """
  shapes = jax.eval_shape(functools.partial(model.init, train=False),
                          jax.ShapeDtypeStruct((), jax.random.key(0).dtype),
                          jax.ShapeDtypeStruct((1, resolution, resolution, 3), jnp.float32))
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name == "kernel":
      return (np.clip(rng.standard_normal(leaf.shape), -2, 2) * 0.09).astype(leaf.dtype)
    if name in ("scale", "var"):
      return np.ones(leaf.shape, leaf.dtype)
    return np.zeros(leaf.shape, leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _inputs(model, resolution: int, batch: int, num_classes: int, seed: int = 0):
  """float32 variables (`numpy_variables`) and a random batch, as numpy."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((batch, resolution, resolution, 3)).astype(np.float32)
  y = rng.integers(0, num_classes, (batch,)).astype(np.int32)
  variables = numpy_variables(model, resolution, seed)
  return variables["params"], variables["batch_stats"], x, y


def _lower(model, args, device, num_classes: int, eval_mode: bool,
           precision: str | None = "highest"):
  """Traces and lowers one check program for `device`: (lowered, inputs on `device`, seconds).

  fp32 programs are built under `jax.default_matmul_precision("highest")` (convolutions and
  dots in full float32, no TF32); bf16 ones at the default precision, as training runs them.
  """
  t0 = time.perf_counter()
  placed = jax.device_put(args, device)
  with (jax.default_matmul_precision(precision) if precision else contextlib.nullcontext()):
    lowered = jax.jit(_check_fn(model, num_classes, eval_mode)).lower(*placed)
  return lowered, placed, time.perf_counter() - t0


def _compile_job(lowered, placed, trace_lower_s: float, device, cpu_options: dict | None):
  """Compiles a lowered check program (in a worker thread); `cpu_options` (XLA options) apply
  to CPU compilations only. Returns (executable, inputs, seconds), the seconds named as
  `benchmarks.bench` reports them."""
  t0 = time.perf_counter()
  compiled = lowered.compile(cpu_options if device.platform == "cpu" else None)
  return compiled, placed, {"trace_lower_s": trace_lower_s,
                            "compile_s": time.perf_counter() - t0}


def _lower_then_compile(compiler, model, args, device, num_classes: int, eval_mode: bool,
                        cpu_options: dict | None, precision: str | None):
  """Lowers one check program and hands it to the `compiler` pool: the future of its build."""
  lowered, placed, seconds = _lower(model, args, device, num_classes, eval_mode, precision)
  return compiler.submit(_compile_job, lowered, placed, seconds, device, cpu_options)


def _submit(pools, model, args, device, num_classes: int, eval_mode: bool,
            cpu_options: dict | None, precision: str | None = "highest"):
  """Queues one check program's build on `pools` = (lowerer, compiler); returns a future whose
  result is the future of (executable, inputs, seconds): see `_built`.

  Tracing and lowering are Python and hold the GIL, so threads doing them at once only take
  turns (on a 2-core box each program's lowering took 2-5x longer so); XLA's compilation
  releases it. So one thread (`lowerer`) lowers every program in turn, `compiler` compiles
  them in parallel, and the caller runs each one as soon as it is built (which releases the GIL
  too) while the later ones are still lowered.
  """
  lowerer, compiler = pools
  return lowerer.submit(_lower_then_compile, compiler, model, args, device, num_classes,
                        eval_mode, cpu_options, precision)


def _built(future):
  """The (executable, inputs, seconds) of a program queued by `_submit`; raises its error."""
  return future.result().result()


def host_impl() -> Impl:
  """The host CPU reference's formulation: "auto" on the CPU (native kernels where they build,
  else `taps_vjp`). XLA:CPU compiles the grouped-convolution gradient of `ACCEL_IMPL` slowly
  (~100 s per MobileNetV2 gradient program on a 2-core box), and the formulations agree to
  round-off (tests/ops)."""
  return Impl(partition="sharded").resolve(backend="cpu")


def _cases(plan, models) -> list[tuple]:
  """The fp32 cases in order, as (label, model class, model fields, (width, resolution, batch)):
  the six MobileNetV2 variants at each of the plan's sizes, then MobileNetV1."""
  cases = []
  for width, res, batch in plan["correctness_sizes"]:
    for act, sc in VARIANTS:
      cases.append((f"v2 {width}/{res} b{batch} {act}/{sc}", models.MobileNetV2,
                    dict(width_multiplier=width, bottleneck_activation=act, shortcut=sc),
                    (width, res, batch)))
  w1, r1, b1 = plan["v1_size"]
  cases.append((f"v1 {w1}/{r1} b{b1}", models.MobileNetV1, dict(width_multiplier=w1),
                (w1, r1, b1)))
  return cases


def _bf16_impl(acc) -> Impl:
  """The bf16 program's formulation: the accelerator's, or the CPU's "auto" for bfloat16."""
  if acc.platform == "cpu":
    return Impl(partition="sharded").resolve(backend="cpu", dtype=jnp.bfloat16)
  return ACCEL_IMPL


def _run_fp32(futs, args, cpu):
  """Runs a case's compiled programs: (accelerator outputs, host outputs, build seconds by side).

  With one future (a CPU-only machine) the "host" run is the same executable again, on inputs
  put on the CPU anew, and the host side has no build of its own."""
  (c_acc, p_acc, t_acc), *rest = [_built(f) for f in futs]
  out = jax.device_get(c_acc(*p_acc))
  if rest:
    c_cpu, p_cpu, t_cpu = rest[0]
    ref = jax.device_get(c_cpu(*p_cpu))
  else:
    ref, t_cpu = jax.device_get(c_acc(*jax.device_put(args, cpu))), dict.fromkeys(t_acc, 0.0)
  return out, ref, {**_by_side(t_acc, "acc"), **_by_side(t_cpu, "cpu")}


def _by_side(times: dict, side: str) -> dict:
  """`times` with the side in each key, as the records store them: compile_s -> compile_s_acc."""
  return {f"{k}_{side}": v for k, v in times.items()}


def correctness(sec: device_report.Section, plan, models) -> tuple[dict, list[str]]:
  """The correctness section (see the module docstring). `models` = mnv2_jax.models.

  Every program (each fp32 case's, on both sides, and the bf16 one, right after its fp32
  reference: it compiles longest) is lowered by one thread in turn and compiled by a pool of
  `plan["compile_threads"]` (`_submit`); the results are compared in case order as they come.
  """
  acc, cpu = jax.devices()[0], jax.devices("cpu")[0]
  same = acc == cpu
  host = host_impl()
  # A CPU-only machine runs the host formulation on both sides (the same program, compiled
  # once): the comparison's code path runs, its numbers are trivially equal (`same_device`).
  accel = host if acc.platform == "cpu" else ACCEL_IMPL
  impl16 = _bf16_impl(acc)
  nc = plan["num_classes"]
  wb, rb, bb = plan["bf16_size"]
  bf16_label = f"v2 {wb}/{rb} b{bb} linear/bottleneck"
  copts = plan.get("cpu_compiler_options")
  rows, records, ok_all = [], [], True
  pools = (concurrent.futures.ThreadPoolExecutor(max_workers=1),
           concurrent.futures.ThreadPoolExecutor(max_workers=plan["compile_threads"]))
  jobs, bf16_future, bf16_ref = [], None, None
  # Inputs by (model class, size): the six variants have the same parameters (the ablations of
  # Fig. 6 keep them), so one draw serves them all, and drawing (`jax.eval_shape` of the init)
  # costs ~0.5 s of Python per case. A variant missing one, or with another shape, fails apply.
  inputs = {}
  try:
    for i, (label, cls, fields, (width, res, batch)) in enumerate(_cases(plan, models)):
      eval_mode = plan["eval_mode_cases"] == "all" or i == 0 or label == bf16_label
      make = lambda impl, dtype="float32", cls=cls, fields=fields: cls(
          num_classes=nc, dropout_rate=0.0, dtype=dtype, impl=impl, **fields)
      if (cls, width, res, batch) not in inputs:
        inputs[cls, width, res, batch] = _inputs(make(accel), res, batch, nc)
      args = inputs[cls, width, res, batch]
      sides = [(acc, make(accel))] if same else [(acc, make(accel)), (cpu, make(host))]
      jobs.append((label, args, eval_mode,
                   [_submit(pools, m, args, d, nc, eval_mode, copts) for d, m in sides]))
      if label == bf16_label:
        bf16_future = _submit(pools, make(impl16, "bfloat16"), args, acc, nc, True, copts,
                              precision=None)
    for label, args, eval_mode, futs in jobs:
      if sec.over():
        records.append({"case": label, "status": "not run (budget)"})
        ok_all = False
        continue
      try:
        out, ref, times = _run_fp32(futs, args, cpu)
      except Exception as e:  # pylint: disable=broad-except
        records.append({"case": label, "status": "error", "error": f"{type(e).__name__}: {e}"})
        rows.append([label, "fp32 acc vs cpu", f"ERROR {type(e).__name__}", "-", "-"])
        ok_all = False
        continue
      tols = {k: v for k, v in TOLERANCES["fp32"].items() if k in out}
      ok, errs = compare_outputs(out, ref, tols)
      ok_all &= ok
      records.append({"case": label, "dtype": "float32", "vs": "host cpu", "passed": ok,
                      "eval_mode": eval_mode, **times, "errors": errs})
      rows.append([label, "fp32 acc vs cpu", "pass" if ok else "FAIL",
                   _worst(errs, "train"), _worst(errs, "eval") if eval_mode else "-"])
      if label == bf16_label:
        bf16_ref = out
      if eval_mode and not any(r.get("selftest") for r in records):
        planted = dict(out, eval_grads=plant_mismatch(out["eval_grads"]))
        caught = not compare_outputs(planted, ref, tols)[0]
        records.append({"case": label, "selftest": True, "planted_fraction": SELFTEST_PLANT,
                        "detected": caught})
        ok_all &= caught
        rows.append([label, f"self-test: {SELFTEST_PLANT:g} planted in eval_grads",
                     "detected" if caught else "NOT DETECTED", "-", "-"])
    if bf16_ref is not None and not sec.over():
      c16, p16, t16 = _built(bf16_future)  # An error here is the section's, as before.
      out16 = jax.device_get(c16(*p16))
      ok, errs = compare_outputs(out16, bf16_ref, TOLERANCES["bf16"])
      ok_all &= ok
      records.append({"case": bf16_label, "dtype": "bfloat16", "vs": "fp32 on the accelerator",
                      "passed": ok, "eval_mode": True, "impl": impl16.describe(),
                      **_by_side(t16, "acc"), "errors": errs})
      rows.append([bf16_label, "bf16 vs fp32 (acc)", "pass" if ok else "FAIL",
                   _worst(errs, "train"), _worst(errs, "eval")])
    else:
      records.append({"case": bf16_label + " bf16", "status": "not run (budget or error)"})
      ok_all = False
  finally:
    for pool in pools:
      pool.shutdown(wait=False, cancel_futures=True)
  host_program = (SAME_DEVICE_NOTE if same else
                  "compiled separately for the host, in the host formulation")
  result = {"status": "passed" if ok_all else "failed", "same_device": same,
            "host_program": host_program, "accelerator": str(acc), "host": str(cpu),
            "accelerator_impl": accel.describe(), "host_impl": host.describe(),
            "matmul_precision": "highest", "cpu_compiler_options": copts,
            "tolerances": TOLERANCES, "cases": records}
  md = [f"Accelerator `{acc}` ({accel.describe()}) vs host `{cpu}` ({host.describe()})" +
        (f" (the same device: {host_program})" if same else "") +
        "; fp32 at matmul precision highest. Errors: rel-L2 / max|diff| over max|ref| (worst "
        "output of each mode).", "",
        *device_report.md_table(["case", "comparison", "result", "train (worst)",
                                 "eval (worst)"], rows)]
  return result, md


def _worst(errs: dict, mode: str) -> str:
  keys = [k for k in errs if k.startswith(mode) or (mode == "train" and k == "batch_stats")]
  gated = [k for k in keys if errs[k]["tol"] is not None]
  if gated:
    k = max(gated, key=lambda k: errs[k]["max_rel"] / max(errs[k]["tol"][1], 1e-30))
  else:
    k = max(keys, key=lambda k: errs[k]["max_rel"])
  note = "" if errs[k]["tol"] is not None else " (not gated)"
  return f"{k} {errs[k]['rel_l2']:.1e} / {errs[k]['max_rel']:.1e}{note}"


# ----------------------------------------------------------------------------------------------
# Training smoke

PAPER_OPTIM = dict(
    name="rmsprop_tf", base_lr=0.045, base_batch_size=96, schedule="exponential",
    decay_rate=0.98, decay_epochs=2.5, staircase=True, warmup_epochs=0.0, momentum=0.9,
    rmsprop_decay=0.9, rmsprop_eps=1.0, nesterov=False, weight_decay=4e-5,
    grad_clip_norm=0.0, label_smoothing=0.1, ema_decay=0.9999)
"""`configs.common.optim_config()` as a plain dict (no ml_collections on the GPU machine);
tests/benchmarks/test_device_check.py checks the two agree."""


class OptimConfig(dict):
  """A dict read as attributes too: what `mnv2_jax.optim` reads from `config.optim`."""

  def __getattr__(self, name):
    try:
      return self[name]
    except KeyError as e:
      raise AttributeError(name) from e


def synthetic_stream(num_batches: int, batch: int, resolution: int, num_classes: int,
                     seed: int = 0) -> list[dict]:
  """Fixed, learnable uint8 batches: each class a fixed random image, plus per-example noise."""
  rng = np.random.default_rng(seed)
  templates = rng.integers(0, 256, (num_classes, resolution, resolution, 3))
  out = []
  for _ in range(num_batches):
    labels = rng.integers(0, num_classes, (batch,))
    noise = rng.integers(-48, 49, (batch, resolution, resolution, 3))
    images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
    out.append({"image": images, "label": labels.astype(np.int32)})
  return out


def _initial_state(model, tx, resolution: int, copts: dict | None):
  """`train_state.create`'s state, with the variables drawn by numpy (`numpy_variables`).

  `train_state.create`'s jitted `model.init` is a 5-15 s XLA:CPU compilation on a small box.
  The optimizer state and the EMA's copies of the variables (own buffers: the step donates the
  state) come from one small jitted program compiled with `copts`: eager `tx.init` and
  `jnp.copy` compile one program per parameter shape (~1.5 s together on a 2-core box).
  """
  from mnv2_jax import train_state  # pylint: disable=g-import-not-at-top
  variables = jax.device_put(numpy_variables(model, resolution))

  def derived(v):
    return tx.init(v["params"]), jax.tree.map(jnp.copy, v)

  opt_state, ema = jax.jit(derived).lower(variables).compile(copts)(variables)
  return train_state.TrainState(
      step=jnp.zeros((), jnp.int32), params=variables["params"],
      batch_stats=variables["batch_stats"], opt_state=opt_state, ema_params=ema["params"],
      ema_batch_stats=ema["batch_stats"],
      rng=jax.random.key_data(jax.random.fold_in(jax.random.key(0), 1)))


def smoke(sec: device_report.Section, plan, models) -> tuple[dict, list[str]]:
  from mnv2_jax import optim, steps, train_state  # pylint: disable=g-import-not-at-top
  p = plan["smoke"]
  model = train_state.resolve_impl(models.MobileNetV2(
      width_multiplier=p["width"], num_classes=p["num_classes"], dtype=p["dtype"]))
  cfg = OptimConfig(PAPER_OPTIM)
  steps_per_epoch = max(1, 1_281_167 // p["batch"])  # ImageNet's epoch at this batch.
  tx, schedule = optim.make_optimizer(cfg, steps_per_epoch=steps_per_epoch,
                                      global_batch_size=p["batch"], total_steps=p["steps"])
  copts = plan.get("cpu_compiler_options") if jax.default_backend() == "cpu" else None
  t0 = time.perf_counter()
  state = _initial_state(model, tx, p["resolution"], copts)
  step = jax.jit(steps.make_train_step(model, tx, schedule, num_classes=p["num_classes"],
                                       label_smoothing=cfg.label_smoothing,
                                       ema_decay=cfg.ema_decay), donate_argnums=(0,))
  stream = [jax.device_put(b) for b in synthetic_stream(
      p["stream_batches"], p["batch"], p["resolution"], p["num_classes"])]
  compiled = step.lower(state, stream[0]).compile(copts)
  compile_s = time.perf_counter() - t0
  loss_hist, gn_hist, done = [], [], 0
  t1 = time.perf_counter()
  for i in range(p["steps"]):
    if sec.over() and done >= p["min_steps"]:  # Never fewer steps than the criterion needs.
      break
    state, metrics = compiled(state, stream[i % len(stream)])
    loss_hist.append(metrics["loss"])  # Device scalars; fetched once at the end.
    gn_hist.append(metrics["grad_norm"])
    done += 1
  losses_np = np.asarray(jax.device_get(loss_hist), np.float64)
  gn = np.asarray(jax.device_get(gn_hist), np.float64)
  run_s = time.perf_counter() - t1
  ema_finite = all(bool(np.all(np.isfinite(np.asarray(x))))
                   for x in jax.tree.leaves(jax.device_get((state.ema_params,
                                                            state.ema_batch_stats))))
  k = max(1, done // 10)
  first, last = (float(np.mean(losses_np[:k])), float(np.mean(losses_np[-k:]))) if done else (
      math.nan, math.nan)
  finite = bool(np.all(np.isfinite(losses_np)) and np.all(np.isfinite(gn))) and ema_finite
  fell = done >= p["min_steps"] and last < p["max_last_over_first"] * first
  status = "passed" if (finite and fell) else "failed"
  result = {"status": status, "steps_done": done, "steps_planned": p["steps"],
            "loss_first_window": first, "loss_last_window": last, "window": k,
            "all_finite": finite, "ema_finite": ema_finite, "loss_fell": fell,
            "criterion": f"mean loss of the last {k} steps < {p['max_last_over_first']} x the "
                         f"first {k}'s, over >= {p['min_steps']} steps; no NaN/inf",
            "compile_s": compile_s, "steps_s": run_s, "impl": model.impl.describe(),
            "optim": PAPER_OPTIM, "steps_per_epoch": steps_per_epoch,
            "lr_first": float(schedule(0)), "losses": losses_np.tolist(),
            "grad_norms": gn.tolist(), **p}
  md = [f"MobileNetV2 {p['width']}/{p['resolution']}, batch {p['batch']}, {p['dtype']}, "
        f"paper optimizer + EMA ({model.impl.describe()}), {p['stream_batches']} fixed synthetic "
        f"batches cycled: {done} of {p['steps']} steps in {run_s:.1f} s (+{compile_s:.1f} s "
        f"init and compile). Loss {first:.3f} (first {k}) -> {last:.3f} (last {k}); finite: "
        f"{finite}; criterion: {result['criterion']}."]
  return result, md
