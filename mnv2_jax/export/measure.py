"""Measured inference cost of trained runs: TF-Lite latency and XLA peak memory, per run record.

For each run workdir (by default every finished run of a sweep dir), the network its
config.json describes is measured and the result is written into the run's record as
`efficiency.json` (`run_record.Efficiency`), where `mnv2-results`, `mnv2-plot` and the W&B report
run read it as two more cost axes beside MAdds:

- **latency**: the median of `repeats` TF-Lite invocations (LiteRT interpreter, XNNPACK,
  float32, batch 1) at each thread count, interleaved across every model of the pass
  (`mnv2_jax.export.latency.measure`), so a burst of load from another process hits all models
  alike. `latency_ms` in the record is the first thread count's;
- **peak memory**: XLA's `temp_size_in_bytes` (`jit(...).lower(...).compile().memory_analysis()`:
  parameters, input and logits excluded) of the inference forward at `memory_batch` (default
  1), with the run's own `model.inference_split` (paper §5.1).

Both are measured on the model's export form (`tflite.EXPORT_IMPL`: XLA ops only), so what is
timed is what is counted, and no custom call hides scratch memory from XLA's accounting. The
TF-Lite model is always the standard schedule (inference_split = 1): the TF-Lite runtime plans
its own buffers, and `inference_split` only changes XLA's.

Neither figure depends on the weights' values, so runs of one architecture (seeds, recipes:
`run_record.arch_fingerprint`) share one measurement, made with stand-in values of exactly its
variables (`latency.stand_in_variables`); every run of the group gets the record, naming the
run it was built from. Checkpoints are not needed.

Why after training rather than inside the trainer: a sweep trains runs side by side, so a
latency taken at the end of each run would be timed against whichever run still trains next to
it. One pass after the sweep times every model under the same conditions.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from mnv2_jax import run_record
from mnv2_jax import train_state
from mnv2_jax.export import latency
from mnv2_jax.export import machine as machine_lib
from mnv2_jax.export import tflite


@dataclasses.dataclass(frozen=True)
class Run:
  """One run to attach a measurement to: its workdir, name, config.json and the config's
  `run_record.arch_fingerprint`."""
  workdir: str
  name: str
  config: Mapping[str, Any]
  arch: str


def finished_runs(sweep_dir: str) -> list[str]:
  """Workdirs of the finished runs directly under `sweep_dir`, sorted by name."""
  if not os.path.isdir(sweep_dir):
    raise ValueError(f"no sweep dir {sweep_dir!r}")
  out = []
  for name in sorted(os.listdir(sweep_dir)):
    workdir = os.path.join(sweep_dir, name)
    if (name not in run_record.OUTPUTS and os.path.isdir(workdir)
        and run_record.run_status(workdir) == run_record.FINISHED):
      out.append(workdir)
  return out


def load_runs(workdirs: Sequence[str]) -> list[Run]:
  """The runs with their configs; ValueError naming a workdir without a usable config.json."""
  runs = []
  for workdir in workdirs:
    path = os.path.join(workdir, run_record.CONFIG)
    try:
      with open(path, encoding="utf-8") as f:
        config = json.load(f)
      run = Run(workdir, os.path.basename(os.path.normpath(workdir)), config,
                run_record.arch_fingerprint(config))  # the spec must build
    except (OSError, json.JSONDecodeError) as e:
      raise ValueError(f"{workdir!r} has no readable {run_record.CONFIG} ({e}); allowed: the "
                       "workdir of an mnv2-train run") from None
    except (KeyError, ValueError, TypeError) as e:
      raise ValueError(f"{path}: not a model config this package can build ({e})") from None
    runs.append(run)
  return runs


def model_of(config: Mapping[str, Any]):
  """The run's Flax module, in its export form (XLA ops only)."""
  num_classes = int(config.get("num_classes") or 1000)
  return tflite.for_export(train_state.build_model(config["model"], num_classes))


def peak_memory_bytes(model, resolution: int, batch: int = 1) -> int:
  """XLA's temp bytes of `model`'s float32 inference forward (no values needed: shapes only)."""
  x = jax.ShapeDtypeStruct((batch, resolution, resolution, 3), jnp.float32)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *x.shape[1:])),
                                                train=False))
  compiled = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).compile()
  return int(compiled.memory_analysis().temp_size_in_bytes)


def measure(runs: Sequence[Run], *, threads: Sequence[int] = (1,), warmup: int = 5,
            repeats: int = 50, memory_batch: int = 1) -> dict[str, run_record.Efficiency]:
  """{workdir: Efficiency} for `runs`, each distinct architecture measured once."""
  if not threads or min(threads) < 1:
    raise ValueError(f"threads must be integers >= 1, got {list(threads)}")
  if warmup < 0 or repeats < 1 or memory_batch < 1:
    raise ValueError(f"need warmup >= 0, repeats >= 1 and memory_batch >= 1; got {warmup}, "
                     f"{repeats}, {memory_batch}")
  by_arch: dict[str, list[Run]] = {}
  for run in runs:
    by_arch.setdefault(run.arch, []).append(run)
  blobs, resolutions, memory = {}, {}, {}
  for arch, group in by_arch.items():
    config = group[0].config
    model = model_of(config)
    res = int(config["input"]["resolution"])
    shape = (1, res, res, 3)
    standard = model.clone(inference_split=1) if hasattr(model, "inference_split") else model
    blobs[arch] = tflite.convert(tflite.inference_fn(
        standard, latency.stand_in_variables(standard, shape)), shape)
    resolutions[arch] = res
    memory[arch] = peak_memory_bytes(model, res, memory_batch)
  times = latency.measure(blobs, resolutions, tuple(threads), warmup, repeats)
  host = machine_lib.machine()
  when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  out = {}
  for arch, group in by_arch.items():
    by_threads = {str(t): latency.summarize(times[(arch, t)]) for t in threads}
    first = by_threads[str(threads[0])]
    eff = run_record.Efficiency(
        arch=arch, latency_ms=first["median_ms"], latency_q1_ms=first["q1_ms"],
        latency_q3_ms=first["q3_ms"], threads=int(threads[0]), repeats=repeats,
        latency_by_threads=by_threads, peak_memory_bytes=memory[arch],
        memory_batch=memory_batch,
        inference_split=int(group[0].config["model"].get("inference_split") or 1),
        tflite_bytes=len(blobs[arch]), machine=f"{host['cpu']} ({host['cpu_count']} CPUs)",
        backend=jax.default_backend(), versions=host["versions"], source_run=group[0].name,
        measured_at=when)
    for run in group:
      out[run.workdir] = eff
  return out
