"""The measuring sections of `benchmarks.device_check`: throughput and the depthwise layers.

Throughput extends `benchmarks.bench` (same JAX training step, same PyTorch model and step, same
alternating timing in `benchmarks.common`): MobileNetV2 training and inference, JAX (params
float32, compute in the plan's dtype) against PyTorch channels_last + autocast, eager and
`torch.compile`d, timed in alternation. Also reported: compile time (JAX trace + XLA compile;
PyTorch's first step, which holds `torch.compile`'s compilation) and device memory (JAX: the
compiled program's own figures from `memory_analysis()` and the process's peak so far; PyTorch:
`max_memory_allocated` over each variant's build and first step).

Depthwise: the shapes of `benchmarks.depthwise_micro` (forward, input gradient, weight gradient
timed apart), its JAX formulations against PyTorch (cuDNN on a GPU).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import bench, common, depthwise_micro, device_correctness, device_report

# Training img/s expected of a good implementation (reference performance.md, sec. 5),
# MobileNetV2 1.0/224, batch 256, bf16; and the aim against torch.compile.
TARGETS = {"H100": (7000, 9000), "H200": (10000, 13000)}
AIM_VS_TORCH_COMPILE = 1.3


def torch_available() -> tuple[bool, str]:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
    return True, torch.__version__
  except ImportError as e:
    return False, f"torch missing ({e})"


def _torch_fn(args, mode: str, compile_backend: str | None, channels_last: bool):
  """`bench`'s PyTorch train/infer step, optionally `torch.compile(backend=...)`d."""
  # pylint: disable-next=protected-access
  torch, net, x, y, device, amp, amp_dtype, sync = bench._torch_setup(args, channels_last)
  fwd = torch.compile(net, backend=compile_backend) if compile_backend else net
  if mode == "train":
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=bench.LR, momentum=bench.MOMENTUM,
                          weight_decay=bench.WEIGHT_DECAY)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=bench.LABEL_SMOOTHING)

    def step():
      opt.zero_grad(set_to_none=True)
      with torch.autocast(device_type=device, dtype=amp_dtype, enabled=amp):
        loss = loss_fn(fwd(x).float(), y)
      loss.backward()
      opt.step()
      sync()
  else:
    net.eval()

    def step():
      with torch.inference_mode(), torch.autocast(device_type=device, dtype=amp_dtype,
                                                  enabled=amp):
        fwd(x)
      sync()
  cuda = device == "cuda"
  if cuda:
    torch.cuda.reset_peak_memory_stats()
  t0 = time.perf_counter()
  step()  # Includes torch.compile's compilation.
  meta = {"first_step_s": time.perf_counter() - t0, "device": device}
  if cuda:
    meta["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
  return step, meta


def _jax_mem(compiled) -> dict:
  out = {}
  try:
    ma = compiled.memory_analysis()
    if ma is not None:
      out = {k: int(getattr(ma, k)) for k in (
          "argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
          "alias_size_in_bytes", "generated_code_size_in_bytes") if hasattr(ma, k)}
  except Exception:  # pylint: disable=broad-except
    pass
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    out["process_peak_bytes_so_far"] = int(stats["peak_bytes_in_use"])
  return out


def _target_for(device_kind: str):
  for name, rng in TARGETS.items():
    if name.lower() in device_kind.lower():
      return name, rng
  return None, None


def throughput(sec: device_report.Section, plan, models) -> tuple[dict, list[str]]:
  p = plan["throughput"]
  have_torch, torch_note = torch_available()
  args = argparse.Namespace(model="mobilenet_v2", width=p["width"], resolution=p["resolution"],
                            batch=p["batch"], num_classes=1000, dtype=p["dtype"])
  torch_threads = p["torch_threads"] or common.usable_cpus()
  if have_torch:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(torch_threads)
  from mnv2_jax import train_state  # pylint: disable=g-import-not-at-top
  model = train_state.resolve_impl(models.MobileNetV2(
      width_multiplier=p["width"], num_classes=1000, dtype=p["dtype"]))
  copts = plan.get("cpu_compiler_options") if jax.default_backend() == "cpu" else None
  records, rows, skipped = [], [], []
  kind = jax.devices()[0].device_kind
  # Drawn by numpy (no compilation): the jitted `model.init` is the largest XLA:CPU program
  # after the step itself (~10-20 s per mode on a 2-core box), and the values do not matter.
  variables = device_correctness.numpy_variables(model, p["resolution"])
  for mode in p["modes"]:
    fns, meta = {}, {}
    if mode == "train":
      fn, m = bench.make_jax_train(model, p["batch"], p["resolution"], 1000,
                                   compiler_options=copts, variables=variables)
    else:
      fn, m = bench.make_jax_infer(model, p["batch"], p["resolution"], compiler_options=copts,
                                   variables=variables)
    m.update(_jax_mem(fn.compiled))
    fns["jax"], meta["jax"] = fn, m
    for label, backend in p["torch_variants"]:
      name = f"torch {label}"
      if not have_torch:
        skipped.append(f"{mode} {name}: {torch_note}")
        continue
      est = p["torch_compile_estimate_s"][mode] if backend else 5.0
      if sec.left() < est + p["timing_estimate_s"]:
        skipped.append(f"{mode} {name}: {sec.left():.0f} s left of the budget, needs ~{est:.0f} s")
        continue
      fns[name], meta[name] = _torch_fn(args, mode, backend, channels_last=True)
    timed = common.time_alternating(fns, warmup=p["warmup"], steps=p["steps"],
                                    repeats=p["repeats"])
    ref = next((n for n in timed if "compile" in n), None) or next(
        (n for n in timed if n.startswith("torch")), None)
    for name, per_rep in timed.items():
      s = common.summarize(per_rep)
      img_s = p["batch"] / s["median_s"]
      ratio = common.summarize(timed[ref])["median_s"] / s["median_s"] if ref else None
      compile_s = meta[name].get("compile_s", 0.0) + meta[name].get("trace_lower_s", 0.0) \
          if name == "jax" else meta[name]["first_step_s"]
      mem = meta[name].get("peak_mem_bytes", meta[name].get("temp_size_in_bytes"))
      records.append({"mode": mode, "variant": name, "img_per_s": img_s, "ratio_ref": ref,
                      "speed_vs_ref": ratio, "per_repeat_s": per_rep, **s, **meta[name]})
      rows.append([mode, name, f"{img_s:.1f}", f"{p['batch'] / s['max_s']:.1f}-"
                   f"{p['batch'] / s['min_s']:.1f}", f"{s['median_s'] * 1e3:.2f}",
                   f"{ratio:.2f}x" if ratio else "-", f"{compile_s:.1f}",
                   f"{mem / 2**20:.0f}" if mem else "-"])
  jax_train = next((r for r in records if r["mode"] == "train" and r["variant"] == "jax"), None)
  tname, trange = _target_for(kind)
  verdict = {"device_kind": kind, "target_name": tname, "target_img_per_s": trange,
             "aim_vs_torch_compile": AIM_VS_TORCH_COMPILE}
  if jax_train is not None:
    verdict["jax_train_img_per_s"] = jax_train["img_per_s"]
    if trange:
      verdict["within_or_above_target"] = jax_train["img_per_s"] >= trange[0]
    if jax_train["ratio_ref"] and "compile" in jax_train["ratio_ref"]:
      verdict["jax_vs_torch_compile"] = jax_train["speed_vs_ref"]
      verdict["meets_aim"] = jax_train["speed_vs_ref"] >= AIM_VS_TORCH_COMPILE
  missing_torch = not have_torch
  status = "torch missing" if missing_torch else ("partial" if skipped else "measured")
  result = {"status": status, "records": records, "skipped": skipped, "verdict": verdict,
            "torch": torch_note, "impl": model.impl.describe(), **p,
            "torch_threads": torch_threads}
  md = [f"MobileNetV2 {p['width']}/{p['resolution']}, batch {p['batch']}, {p['dtype']}; JAX "
        f"({model.impl.describe()}) vs PyTorch channels_last + autocast ({torch_threads} "
        f"thread{'s' if torch_threads > 1 else ''}); alternating, "
        f"{p['warmup']} warm-up, {p['repeats']} repeats x {p['steps']} steps; ratio = reference "
        f"median step time / this one (reference: torch.compile where run).", "",
        *device_report.md_table(["mode", "variant", "img/s (median)", "range", "ms/step",
                                 "vs ref", "compile / first step s", "peak MiB"], rows), "",
        f"Target ({tname or 'no target for ' + kind}): {trange or '-'} img/s training; aim >= "
        f"{AIM_VS_TORCH_COMPILE}x torch.compile. JAX training: "
        f"{verdict.get('jax_train_img_per_s', float('nan')):.1f} img/s, "
        f"{verdict.get('jax_vs_torch_compile', float('nan')):.2f}x torch.compile."]
  if skipped:
    md.append("Not run: " + "; ".join(skipped))
  return result, md


def depthwise(sec: device_report.Section, plan) -> tuple[dict, list[str]]:
  p = plan["depthwise"]
  have_torch, torch_note = torch_available()
  jdt = jnp.dtype(p["dtype"])
  records, rows, skipped = [], [], []
  for c, hw, stride in p["shapes"]:
    if sec.over():
      skipped.append(f"{c}:{hw}:{stride} (budget)")
      continue
    rng = np.random.default_rng(0)
    ho = -(-hw // stride)
    x_np = rng.standard_normal((p["batch"], hw, hw, c), np.float32)
    k_np = rng.standard_normal((3, 3, 1, c), np.float32) * 0.3
    g_np = rng.standard_normal((p["batch"], ho, ho, c), np.float32)
    x, k, g = (jax.device_put(jnp.asarray(a, jdt)) for a in (x_np, k_np, g_np))
    fns = {impl: depthwise_micro._jax_fns(impl, x, k, g, stride)  # pylint: disable=protected-access
           for impl in p["impls"]}
    if have_torch:
      for layout in p["torch_layouts"]:
        fns[f"torch_{layout}"] = depthwise_micro._torch_fns(  # pylint: disable=protected-access
            x_np, k_np, g_np, stride, layout == "channels_last", p["dtype"])
    for pass_name in depthwise_micro.PASSES:
      timed = common.time_alternating({n: f[pass_name] for n, f in fns.items()},
                                      warmup=p["warmup"], steps=p["steps"], repeats=p["repeats"])
      for name, per_rep in timed.items():
        s = common.summarize(per_rep)
        records.append({"impl": name, "pass": pass_name, "channels": c, "size": hw,
                        "stride": stride, **s})
        rows.append([f"{c}ch {hw}x{hw} s{stride}", pass_name, name,
                     f"{s['median_s'] * 1e3:.3f}", f"{s['min_s'] * 1e3:.3f}"])
  if not have_torch:
    skipped.append(f"torch layouts: {torch_note}")
  status = "torch missing" if not have_torch else ("partial" if skipped else "measured")
  result = {"status": status, "records": records, "skipped": skipped, "torch": torch_note,
            "backend": jax.default_backend(), **p}
  md = [f"3x3 depthwise, batch {p['batch']}, {p['dtype']}: median / min ms per call, "
        f"alternating ({p['warmup']} warm-up, {p['repeats']} x {p['steps']} calls).", "",
        *device_report.md_table(["layer", "pass", "impl", "median ms", "min ms"], rows)]
  if skipped:
    md.append("Not run: " + "; ".join(skipped))
  return result, md
