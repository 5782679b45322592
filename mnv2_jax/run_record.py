"""The run record: a run directory's layout, its statuses and its `summary.json`, typed.

The trainer writes a run directory; the sweep launcher, results and plots read it. This module
is the contract between them, so none of them needs another to learn the format:

    <workdir>/config.json     the resolved config, plus the figures in DERIVED_CONFIG_KEYS
    <workdir>/metrics.jsonl   one JSON object per logged step (`mnv2_jax.logging.jsonl`)
    <workdir>/summary.json    a `Summary`, rewritten atomically at start ("running"), on
                              failure or preemption, and at the end ("finished")
    <workdir>/launch.log      the launcher's capture of the trainer's output (`mnv2-sweep`)
    <workdir>/efficiency.json an `Efficiency`: measured latency and peak memory of the run's
                              architecture (`mnv2-measure`, `mnv2-sweep --measure`), optional
    <workdir>/checkpoints/    orbax checkpoints; <workdir>/wandb/ the W&B run dir

A sweep dir holds one workdir per run, named by its run name, plus `MANIFEST` and the
`OUTPUTS` directories that the tools write next to them.

Accuracies are fractions in [0, 1]. `compute_figures` gives a run's MAdds and parameters from
its config alone (the architecture spec and `mnv2_jax.complexity`; no JAX).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from mnv2_jax import ablations
from mnv2_jax import complexity
from mnv2_jax import spec as spec_lib

CONFIG, METRICS, SUMMARY = "config.json", "metrics.jsonl", "summary.json"
LOG, MANIFEST, EFFICIENCY = "launch.log", "sweep.json", "efficiency.json"
# What our tools write next to the runs (not runs themselves).
OUTPUTS = frozenset({"wandb_sweeps", "results", "plots", "slurm"})
# Keys the trainer adds to config.json next to the config's own sections.
DERIVED_CONFIG_KEYS = frozenset({"madds", "params", "params_no_bn", "num_classes",
                                 "impl_resolved", "steps_per_epoch", "total_steps"})

# Statuses the trainer writes into summary.json ...
RUNNING, PREEMPTED = "running", "preempted"
# ... and the launcher's view of a workdir (a summary saying running/preempted, or files and
# no summary, is an interrupted run: relaunching it resumes it).
FINISHED, FAILED, INTERRUPTED, PENDING = "finished", "failed", "interrupted", "pending"
TRAINER_STATUSES = (RUNNING, PREEMPTED, FAILED, FINISHED)
NO_EVAL = -1.0  # The trainer's "no eval yet" for best/top1 in checkpoint metadata.


def trainer_status(workdir: str) -> str | None:
  """The status the trainer last wrote (one of TRAINER_STATUSES), or None (no readable one)."""
  try:
    with open(os.path.join(workdir, SUMMARY), encoding="utf-8") as f:
      status = json.load(f).get("status")
  except (OSError, json.JSONDecodeError, AttributeError):
    return None
  return status if status in TRAINER_STATUSES else None


def run_status(workdir: str) -> str:
  """One of FINISHED, FAILED, INTERRUPTED, PENDING for a run workdir."""
  if os.path.isfile(os.path.join(workdir, SUMMARY)):
    status = trainer_status(workdir)
    if status == FINISHED:
      return FINISHED
    return FAILED if status == FAILED else INTERRUPTED
  if os.path.isdir(workdir) and [e for e in os.listdir(workdir) if e != LOG]:
    return INTERRUPTED
  return PENDING


def compute_figures(config: Mapping[str, Any], num_classes: int = 1000):
  """MAdds, params and memory of a run's model, from its config (1000 classes unless told).

  A config with a `head` section (detection / segmentation) gets its backbone + head figures
  (`heads_complexity.HeadComplexity`: `madds`, `params` and the per-part breakdown).
  """
  if config.get("head") is not None:
    from mnv2_jax import heads_complexity  # pylint: disable=g-import-not-at-top
    from mnv2_jax import heads_spec  # pylint: disable=g-import-not-at-top
    return heads_complexity.analyze(heads_spec.from_config(
        config["model"], config["head"], int(config["input"]["resolution"]), num_classes))
  arch = spec_lib.from_config(config["model"], int(config["input"]["resolution"]), num_classes)
  return complexity.analyze_spec(arch)


_METRICS = {"final_top1": "final/top1", "final_top5": "final/top5", "final_loss": "final/loss",
            "best_top1": "best/top1", "best_top5": "best/top5"}


@dataclasses.dataclass(frozen=True)
class Summary:
  """`summary.json`. In the file, metric fields are named "final/top1" etc. (`to_json`) and
  the model's axis values are top-level fields named like the config's (`shortcut`, ...)."""
  status: str
  model: str
  width_multiplier: float
  resolution: int
  seed: int
  dataset: str | None
  axes: Mapping[str, Any]          # {field: value} of the model's ablation axes
  madds: int | None = None
  params: int | None = None
  params_no_bn: int | None = None
  steps: int | None = None
  epochs: float | None = None
  eval_weights: str | None = None  # "ema" | "raw": which weights the accuracies are of
  wall_time_s: float | None = None
  run_name: str | None = None
  group: str | None = None
  final_top1: float | None = None
  final_top5: float | None = None
  final_loss: float | None = None
  best_top1: float | None = None
  best_top5: float | None = None
  best_step: int | None = None
  error: str | None = None
  # Dense heads (`config.head`): the task, its primary metric ("mAP" / "mIoU") and its values.
  task: str = "classification"
  head: str | None = None
  metric: str = "top1"
  final_metric: float | None = None
  best_metric: float | None = None

  @classmethod
  def of_config(cls, config: Mapping[str, Any], cplx: complexity.Complexity, *,
                status: str, **fields) -> "Summary":
    """A run's summary from its resolved config (ConfigDict or dict) and its complexity."""
    return cls._of(config, status=status, madds=cplx.madds, params=cplx.params,
                   params_no_bn=cplx.params_no_bn, **fields)

  @classmethod
  def _of(cls, config: Mapping[str, Any], *, status: str, **fields) -> "Summary":
    if status not in TRAINER_STATUSES:
      raise ValueError(f"summary status must be one of {TRAINER_STATUSES}, got {status!r}")
    model = config["model"]
    return cls(status=status, model=model["name"],
               width_multiplier=float(model["width_multiplier"]),
               resolution=int(config["input"]["resolution"]), seed=int(config["seed"]),
               dataset=config["input"]["dataset"],
               axes=ablations.values_of(model["name"], model),
               run_name=config["wandb"]["name"], group=config["wandb"]["group"], **fields)

  @classmethod
  def of_dense(cls, config: Mapping[str, Any], *, task: str, metric: str, madds: int,
               params: int, status: str, **fields) -> "Summary":
    """A detection / segmentation run's summary: MAdds and params of backbone + head
    (`heads_complexity`), the primary metric in `final_metric` / `best_metric`."""
    return cls._of(config, status=status, madds=madds, params=params, task=task,
                   head=config["head"]["name"], metric=metric, **fields)

  def to_json(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    axes = d.pop("axes")
    out = {_METRICS.get(k, k): v for k, v in d.items()}
    out.update(axes)
    return out

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> "Summary":
    """Reads a summary.json dict; absent fields are None, negative accuracies (no eval) too."""
    names = {f.name for f in dataclasses.fields(cls)} - {"axes"}
    fields = {}
    for name in names:
      value = d.get(_METRICS.get(name, name))
      if name in _METRICS and isinstance(value, (int, float)) and value < 0:
        value = None
      fields[name] = value
    model = d.get("model") or "mobilenet_v2"
    fields["axes"] = ablations.values_of(model, d) if model in spec_lib.SPECS else {}
    fields["model"] = model
    return cls(**fields)



def arch_fingerprint(config: Mapping[str, Any]) -> str:
  """A short hash of the architecture a config.json describes, and how it is run at inference.

  The expanded spec (layers, shortcuts, width, resolution, classes: `spec.from_config`) plus
  `model.inference_split`, which changes the inference schedule (peak memory) but no layer. Two
  runs with equal fingerprints are the same network to deploy, whatever their seed or recipe.
  """
  model = config["model"]
  arch = spec_lib.from_config(model, int(config["input"]["resolution"]),
                              int(config.get("num_classes") or 1000))
  key = f"{arch!r}|inference_split={int(model.get('inference_split') or 1)}"
  return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Efficiency:
  """`efficiency.json`: the measured inference cost of a run's architecture.

  Written by `mnv2_jax.export.measure` (see there for how each figure is measured):
  `latency_ms` is the median TF-Lite (XNNPACK, float32, batch 1) latency at `threads` threads,
  with its quartiles and `repeats`; `latency_by_threads` holds every thread count measured
  ({"1": {"median_ms", "q1_ms", "q3_ms", "n"}, ...}). `peak_memory_bytes` is XLA's
  `temp_size_in_bytes` of the batch-`memory_batch` inference program (parameters, input and
  logits excluded) with the run's `inference_split`. `arch` is `arch_fingerprint` of the
  config measured: a file whose fingerprint differs from the run's config is stale and is
  ignored (`read_efficiency`). `source_run` names the run whose config was exported, when
  several runs share one architecture.
  """
  arch: str
  latency_ms: float
  latency_q1_ms: float
  latency_q3_ms: float
  threads: int
  repeats: int
  latency_by_threads: Mapping[str, Mapping[str, float]]
  peak_memory_bytes: int
  memory_batch: int
  inference_split: int
  tflite_bytes: int
  machine: str
  backend: str
  versions: Mapping[str, str | None]
  source_run: str
  measured_at: str

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> "Efficiency":
    names = {f.name for f in dataclasses.fields(cls)}
    missing = sorted(names - set(d))
    if missing:
      raise ValueError(f"{EFFICIENCY} lacks {missing}")
    return cls(**{k: d[k] for k in names})


def write_efficiency(workdir: str, eff: Efficiency) -> str:
  """Writes `<workdir>/efficiency.json` atomically (a temporary file, then a rename)."""
  path = os.path.join(workdir, EFFICIENCY)
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(eff.to_json(), f, indent=1)
  os.replace(tmp, path)
  return path


def read_efficiency(workdir: str, config: Mapping[str, Any] | None = None
                    ) -> Efficiency | None:
  """The run's `Efficiency`, or None: no file, an unreadable one, or (given the run's config)
  one measured for another architecture (the run was changed after it was measured)."""
  try:
    with open(os.path.join(workdir, EFFICIENCY), encoding="utf-8") as f:
      eff = Efficiency.from_json(json.load(f))
  except (OSError, ValueError, TypeError, AttributeError):
    return None
  if config:
    try:
      if arch_fingerprint(config) != eff.arch:
        return None
    except (KeyError, ValueError, TypeError):
      return None
  return eff
