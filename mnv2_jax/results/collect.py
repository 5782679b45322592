"""Collecting the runs of a sweep dir into flat records (one per run workdir).

Sources, in order of preference, for each ``<sweep_dir>/<run>/``:

1. ``summary.json`` (+ ``config.json``, ``metrics.jsonl``): the trainer's ground truth.
2. the W&B run under ``<run>/wandb/`` (``mnv2_jax.logging.read_offline_run``) when there is no
   summary.json (e.g. the workdir was lost but the W&B run dir was kept/copied): config,
   summary (``eval/top1`` max/last as the writer aggregates it) and history.
3. ``config.json`` + ``metrics.jsonl`` alone (an interrupted run): the best/last eval so far.

Each run is scored by its task's primary metric, named in its summary (``metric``: "top1" for
the classifier, "mAP" / "mIoU" for detection / segmentation, `mnv2_jax.dense.tasks.METRIC`;
a summary without one is a classifier's). A record carries that name, the metric's final/best
values and its ``eval/<metric>`` curve. Runs of different metrics are never averaged or put on
one frontier: `by_metric` splits a collection, and everything that aggregates
(`grouping.groups`, the figures) rejects a mix (`metric_of`).

``efficiency.json`` (``mnv2-measure``), when present and measured for the run's current
architecture, adds the measured latency and peak inference memory.

Metrics are fractions in [0, 1] as the trainer writes them; tables and plots show percent.
``sweep.json`` (written by ``mnv2-sweep``) tells which studies asked for each run; without it,
the study names are recovered from the run's W&B tags when they match ``experiments/*.py``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from absl import logging as absl_logging

from mnv2_jax import ablations
from mnv2_jax import run_record
from mnv2_jax import spec as spec_lib
from mnv2_jax.logging import jsonl

OUTPUTS = run_record.OUTPUTS
# The classifier's task and metric: `run_record.Summary`'s defaults, which a summary written
# before dense runs existed (no `task` / `metric` fields) also means.
CLASSIFICATION, TOP1 = run_record.Summary.task, run_record.Summary.metric
# Top-level keys train_dense adds to config.json beside run_record.DERIVED_CONFIG_KEYS: the task
# (a record field) and a figure derived from the architecture. Neither is an experiment setting.
_DENSE_DERIVED_KEYS = frozenset({"task", "madds_space_to_batch"})


@dataclasses.dataclass
class RunRecord:
  """One run, flattened. ``curve`` is [(step, eval metric fraction), ...] of ``eval/<metric>``.

  ``metric_name`` is the run's primary metric ("top1", "mAP", "mIoU"; from its summary) and
  ``final_metric`` / ``best_metric`` its values. For a classifier they equal ``final_top1`` /
  ``best_top1`` (filled from them when not given); dense runs have no top-1 / top-5.

  ``axes`` holds the model's ablation axes (``{field: value}``, baselines filled in);
  ``settings`` every other experiment key of its config (``{path: value}``: not bookkeeping,
  not the operating point, not an axis, not the seed; ``mnv2_jax.ablations``). Runs that differ
  in ``settings`` are different experiments (``results.grouping``).
  """
  name: str
  workdir: str
  status: str
  source: str                 # summary | wandb | metrics
  model: str
  width: float
  resolution: int
  seed: int
  axes: dict[str, Any] = dataclasses.field(default_factory=dict)
  settings: dict[str, Any] = dataclasses.field(default_factory=dict)
  dataset: str | None = None
  madds: int | None = None
  params: int | None = None
  params_no_bn: int | None = None
  final_top1: float | None = None
  final_top5: float | None = None
  best_top1: float | None = None
  best_top5: float | None = None
  best_step: int | None = None
  steps: int | None = None
  epochs: float | None = None
  wall_time_s: float | None = None
  latency_ms: float | None = None         # efficiency.json (`mnv2-measure`), when measured
  peak_memory_bytes: int | None = None    # efficiency.json, when measured
  group: str | None = None
  studies: tuple[str, ...] = ()
  curve: tuple[tuple[int, float], ...] = ()
  task: str = CLASSIFICATION
  metric_name: str = TOP1
  final_metric: float | None = None
  best_metric: float | None = None

  def __post_init__(self):
    if self.metric_name == TOP1:
      if self.final_metric is None:
        self.final_metric = self.final_top1
      if self.best_metric is None:
        self.best_metric = self.best_top1

  @property
  def variant(self) -> str:
    """The design label from the declared axes: "linear/bottleneck", ".../t4", "v1"."""
    return ablations.variant(self.model, self.axes, spec_lib.SHORT_NAMES.get(self.model,
                                                                             self.model))

  @property
  def point(self) -> tuple[str, str | None, float, int]:
    """The operating point: (model, dataset, width, resolution)."""
    return (self.model, self.dataset, self.width, self.resolution)

  def metric(self, which: str) -> float | None:
    """The primary metric's "final" or "best" value (a fraction), or None."""
    return {"final": self.final_metric, "best": self.best_metric}[which]


def metric_of(records: Sequence[RunRecord]) -> str:
  """The one metric of `records` (TOP1 when there are none); ValueError naming the metrics
  found when they mix (averaging a top-1 with an mAP, or drawing them on one frontier, is
  meaningless: split them with `by_metric`)."""
  found = sorted({r.metric_name for r in records})
  if len(found) > 1:
    raise ValueError(f"runs of different metrics ({', '.join(found)}) cannot be aggregated "
                     "together; split them by metric (collect.by_metric)")
  return found[0] if found else TOP1


def by_metric(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
  """{metric: its records, in order}: top-1 first, then the other metrics by name."""
  out: dict[str, list[RunRecord]] = {}
  for r in records:
    out.setdefault(r.metric_name, []).append(r)
  return {m: out[m] for m in sorted(out, key=lambda m: (m != TOP1, m))}


def metric_label(metric: str) -> str:
  """How text names a metric: "top-1" for the classifier's (as before), else its own name."""
  return "top-1" if metric == TOP1 else metric


def metric_suffix(metric: str) -> str:
  """The suffix of a metric's output names (files, W&B keys): none for top-1, so classifier
  outputs keep their names, else "_<metric>" ("aggregate_mAP.csv", "fig5_mAP.png")."""
  return "" if metric == TOP1 else f"_{metric}"


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
  """The experiment keys of a config.json dict other than point, axes and seed."""
  skip = set(ablations.POINT_KEYS) | {a.path for a in ablations.axes()} | {ablations.SEED}
  flat = ablations.flatten({k: v for k, v in config.items()
                            if k not in run_record.DERIVED_CONFIG_KEYS | _DENSE_DERIVED_KEYS})
  return {k: v for k, v in ablations.experiment_keys(flat).items() if k not in skip}


def _curve(rows: list[dict[str, Any]], key: str = "eval/top1") -> tuple[tuple[int, float], ...]:
  points: dict[int, float] = {}
  for row in rows:
    step = row.get("step", row.get("_step"))
    value = row.get(key)
    if isinstance(step, int) and isinstance(value, (int, float)):
      points[step] = float(value)  # Last value at a step wins (resumed runs).
  return tuple(sorted(points.items()))


def _score(value: Any) -> float | None:
  """A metric value as written, or None: absent, not a number, or negative ("no eval yet")."""
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
  return float(value) if ok else None


def _task_metric(summary: dict[str, Any], config: dict[str, Any]) -> tuple[str, str]:
  """(task, metric) of a run: its summary's; without one (no summary.json, or a W&B summary
  that lacks them), a config with a `head` section is a dense run, whose task and metric are
  `mnv2_jax.dense.tasks`' for that head; anything else is a classifier."""
  if summary.get("metric"):
    return summary.get("task") or CLASSIFICATION, summary["metric"]
  head = config.get("head")
  if isinstance(head, dict) and head.get("name"):
    from mnv2_jax.dense import tasks  # pylint: disable=g-import-not-at-top
    task = tasks.TASKS[head["name"]]
    return task, tasks.METRIC[task]
  return CLASSIFICATION, TOP1


def _max_of(value: Any) -> Any:
  """W&B summaries of max/last-aggregated metrics are dicts: {"max": .., "last": ..}."""
  return value.get("max") if isinstance(value, dict) else value


def _last_of(value: Any) -> Any:
  return value.get("last") if isinstance(value, dict) else value


def _from_wandb(workdir: str) -> tuple[dict, dict, list] | None:
  if not os.path.isdir(os.path.join(workdir, "wandb")):
    return None
  from mnv2_jax.logging import read_offline_run  # pylint: disable=g-import-not-at-top
  try:
    run = read_offline_run(workdir, reader="parser")
  except (OSError, ValueError) as e:
    absl_logging.warning("%s: no readable W&B run (%s)", workdir, e)
    return None
  if run["job_type"] not in (None, "train"):
    return None  # e.g. the mnv2-results report run, not a training run.
  summary = dict(run["summary"])
  summary.setdefault("status", "finished" if run["finished"] and run["exit_code"] == 0
                     else "failed" if run["finished"] else "running")
  for k in ("top1", "top5"):
    summary.setdefault(f"final/{k}", _last_of(summary.get(f"eval/{k}")))
    summary.setdefault(f"best/{k}", _max_of(summary.get(f"eval/{k}")))
  summary.setdefault("group", run["group"])
  summary.setdefault("run_name", run["name"])
  summary["_tags"] = run["tags"]
  return summary, run["config"], run["history"]


def read_run(workdir: str, studies: tuple[str, ...] = ()) -> RunRecord | None:
  """The record of one run workdir, or None if it has no usable files."""
  summary = jsonl.load_json_object(os.path.join(workdir, run_record.SUMMARY))
  config = jsonl.load_json_object(os.path.join(workdir, run_record.CONFIG))
  history = jsonl.read_metrics(os.path.join(workdir, run_record.METRICS))
  source = "summary" if summary else "metrics"
  status = None
  if not summary:
    from_wandb = _from_wandb(workdir)
    if from_wandb is not None:
      summary, wb_config, wb_history = from_wandb
      config = config or wb_config
      history = history or wb_history
      source, status = "wandb", summary["status"]
  if not summary and not config:
    return None
  try:
    task, metric = _task_metric(summary, config)
  except KeyError as e:
    absl_logging.warning("%s: unknown head %s; skipped", workdir, e)
    return None
  if source == "wandb" and metric != TOP1:
    value = summary.get(f"eval/{metric}")  # last value; max too when W&B aggregated it
    summary.setdefault("final_metric", _last_of(value))
    if isinstance(value, dict):
      summary.setdefault("best_metric", _max_of(value))
  model_cfg = config.get("model", {})
  input_cfg = config.get("input", {})
  # Typed view of summary.json; a run without one (interrupted before its first write) is
  # described by its config alone.
  s = run_record.Summary.from_json({
      "status": run_record.RUNNING, "run_name": None, **summary,
      **({} if summary.get("model") else {
          "model": model_cfg.get("name"), "width_multiplier": model_cfg.get("width_multiplier"),
          "resolution": input_cfg.get("resolution"), "seed": config.get("seed"),
          "dataset": input_cfg.get("dataset"), **model_cfg})})
  if s.model not in spec_lib.SPECS or s.width_multiplier is None or s.resolution is None:
    absl_logging.warning("%s: no model, width or resolution in its files; skipped", workdir)
    return None
  curve = _curve(history, f"eval/{metric}")
  if not studies:
    studies = _study_tags(summary.get("_tags") or config.get("wandb", {}).get("tags") or ())

  record = RunRecord(
      name=s.run_name or os.path.basename(os.path.normpath(workdir)),
      workdir=workdir, status=status or run_record.run_status(workdir), source=source,
      model=s.model, width=float(s.width_multiplier), resolution=int(s.resolution),
      seed=int(s.seed or 0), axes=dict(s.axes), settings=settings_of(config),
      dataset=s.dataset, madds=s.madds, params=s.params, params_no_bn=s.params_no_bn,
      final_top1=s.final_top1, final_top5=s.final_top5, best_top1=s.best_top1,
      best_top5=s.best_top5, best_step=s.best_step, steps=s.steps, epochs=s.epochs,
      wall_time_s=s.wall_time_s, group=s.group or config.get("wandb", {}).get("group"),
      studies=tuple(studies), curve=curve, task=task, metric_name=metric,
      **({} if metric == TOP1 else {"final_metric": _score(s.final_metric),
                                    "best_metric": _score(s.best_metric)}))
  eff = run_record.read_efficiency(workdir, config) if config else None
  if eff is not None:
    record.latency_ms, record.peak_memory_bytes = eff.latency_ms, eff.peak_memory_bytes
  if record.best_metric is None and curve:  # Interrupted: best/last eval so far.
    best_step, best = max(curve, key=lambda p: (p[1], -p[0]))
    record.best_metric, record.best_step = best, best_step
    if metric == TOP1:
      record.best_top1 = best
  if record.madds is None and model_cfg and input_cfg:
    try:  # Counted with 1000 classes; the trainer's own count wins when present.
      record.madds = run_record.compute_figures(config).madds
    except (KeyError, ValueError, TypeError):
      pass
  return record


def read_manifest(sweep_dir: str) -> dict[str, Any]:
  return jsonl.load_json_object(os.path.join(sweep_dir, run_record.MANIFEST))


def _study_tags(tags) -> tuple[str, ...]:
  """Study names among a run's W&B tags (``mnv2-sweep`` tags runs with them)."""
  return tuple(t for t in tags if isinstance(t, str) and t.startswith(("fig", "variant_")))


def collect(sweep_dir: str) -> list[RunRecord]:
  """Every run under ``sweep_dir`` (manifest runs first, in manifest order, then the rest)."""
  if not os.path.isdir(sweep_dir):
    raise FileNotFoundError(f"no sweep dir {sweep_dir!r}")
  manifest = read_manifest(sweep_dir)
  listed = {r["name"]: tuple(r.get("studies", ())) for r in manifest.get("runs", [])}
  names = list(listed) + sorted(
      e for e in os.listdir(sweep_dir)
      if e not in listed and os.path.isdir(os.path.join(sweep_dir, e)) and e not in OUTPUTS)
  records = []
  for name in names:
    workdir = os.path.join(sweep_dir, name)
    studies = listed.get(name, ())
    record = read_run(workdir, studies) if os.path.isdir(workdir) else None
    if record is not None:
      records.append(record)
  return records
