"""Writing constructed run workdirs (the trainer's file contract) for tests and demos.

``write_run`` produces ``config.json``, ``metrics.jsonl`` and ``summary.json`` exactly as the
trainer documents them (accuracies as fractions), from numbers the caller chooses, so results
and plotting code can be tested against known inputs without training anything. With ``head``
("ssdlite", "deeplabv3") the run is a dense one as `mnv2_jax.train_dense` writes it: a
``head`` section and the ``task`` in its config, its task's metric (`mnv2_jax.dense.tasks`) as
``eval/<metric>`` in metrics.jsonl and ``metric`` / ``final_metric`` / ``best_metric`` in its
summary (`run_record.Summary.of_dense`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

from mnv2_jax import run_record


def write_run(workdir: str, *, model: str = "mobilenet_v2", width: float = 0.35,
              resolution: int = 32, bottleneck_activation: str = "linear",
              shortcut: str = "bottleneck", expansion_factor: float = 6.0, seed: int = 0,
              dataset: str = "sklearn_digits", curve: Sequence[tuple[int, float]] = (),
              status: str | None = "finished", final_top1: float | None = None,
              best_top1: float | None = None, top5: float | None = None,
              group: str = "test", name: str | None = None, tags: Sequence[str] = (),
              wall_time_s: float = 60.0, write_summary: bool = True,
              madds: int | None = None, axes: dict[str, Any] | None = None,
              config_updates: dict[str, Any] | None = None, head: str | None = None,
              final_metric: float | None = None, best_metric: float | None = None) -> str:
  """Writes one constructed run; ``final_top1``/``best_top1`` default to the curve's last/max.

  With ``head`` the run is a detection / segmentation run whose ``curve`` holds its metric
  (mAP / mIoU fractions); ``final_metric`` / ``best_metric`` default to its last/max, and
  ``final_top1`` / ``best_top1`` / ``top5`` do not apply. Its detection runs also log an
  ``eval/AP50`` that differs from the mAP, as the trainer's do.

  ``madds`` defaults to the architecture's real count (``run_record.compute_figures``); a
  test that must tell runs of one operating point apart (e.g. by their plotted points) gives
  each its own value. ``axes`` sets further model axis fields ({field: value}) and
  ``config_updates`` any other config key ({"optim.base_lr": 0.1}).
  """
  os.makedirs(workdir, exist_ok=True)
  name = name or os.path.basename(os.path.normpath(workdir))
  config = {
      "seed": seed,
      "num_classes": 10,  # as the trainer writes it (run_record.DERIVED_CONFIG_KEYS)
      "model": {"name": model, "width_multiplier": width, "expansion_factor": expansion_factor,
                "bottleneck_activation": bottleneck_activation, "shortcut": shortcut},
      "input": {"dataset": dataset, "resolution": resolution, "global_batch_size": 64},
      "train": {"num_epochs": 12.0, "num_steps": -1},
      "wandb": {"group": group, "name": name, "tags": list(tags)},
  }
  config["model"].update(axes or {})
  task = metric = None
  if head is not None:
    from mnv2_jax.dense import tasks  # pylint: disable=g-import-not-at-top
    task = tasks.TASKS[head]
    metric = tasks.METRIC[task]
    config["head"] = {"name": head}
  for path, value in (config_updates or {}).items():
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  summarize = write_summary and status is not None
  cplx = (run_record.compute_figures(config, num_classes=10)
          if head is not None or summarize else None)
  if cplx is not None and madds is not None:
    cplx = dataclasses.replace(cplx, madds=madds)
  if head is not None:  # what train_dense adds to config.json
    config.update(task=task, madds=cplx.madds, params=cplx.params,
                  madds_space_to_batch=cplx.madds_space_to_batch)
  with open(os.path.join(workdir, run_record.CONFIG), "w", encoding="utf-8") as f:
    json.dump(config, f)
  with open(os.path.join(workdir, run_record.METRICS), "w", encoding="utf-8") as f:
    for step, value in curve:
      if head is None:
        evals = {"eval/top1": value,
                 "eval/top5": top5 if top5 is not None else min(1.0, value + 0.05)}
      else:
        evals = {f"eval/{metric}": value,
                 **({"eval/AP50": min(1.0, value + 0.2)} if task == "detection" else {})}
      f.write(json.dumps({"step": step, "train/loss": 1.0, **evals, "eval/loss": 1.0}) + "\n")
  if not summarize:
    return workdir
  last = curve[-1][1] if curve else None
  top = max(v for _, v in curve) if curve else None
  common = dict(status=status, best_step=max(curve, key=lambda p: p[1])[0] if curve else None,
                steps=curve[-1][0] if curve else 0, epochs=12.0, wall_time_s=wall_time_s)
  if head is not None:
    summary = run_record.Summary.of_dense(
        config, task=task, metric=metric, madds=cplx.madds, params=cplx.params,
        final_metric=last if final_metric is None else final_metric,
        best_metric=top if best_metric is None else best_metric,
        final_loss=1.0 if curve else None, **common)
  else:
    summary = run_record.Summary.of_config(
        config, cplx, final_top1=last if final_top1 is None else final_top1, final_top5=top5,
        best_top1=top if best_top1 is None else best_top1, best_top5=top5, **common)
  with open(os.path.join(workdir, run_record.SUMMARY), "w", encoding="utf-8") as f:
    json.dump(summary.to_json(), f)
  return workdir


def write_efficiency(workdir: str, *, latency_ms: float, peak_memory_bytes: int,
                     threads: int = 1) -> str:
  """Writes a constructed `efficiency.json` for the run in `workdir` (its config's fingerprint),
  as `mnv2-measure` would, with the latency and memory the caller chooses."""
  with open(os.path.join(workdir, run_record.CONFIG), encoding="utf-8") as f:
    config = json.load(f)
  timing = {"median_ms": latency_ms, "q1_ms": latency_ms, "q3_ms": latency_ms, "n": 1}
  return run_record.write_efficiency(workdir, run_record.Efficiency(
      arch=run_record.arch_fingerprint(config), latency_ms=latency_ms, latency_q1_ms=latency_ms,
      latency_q3_ms=latency_ms, threads=threads, repeats=1,
      latency_by_threads={str(threads): timing}, peak_memory_bytes=peak_memory_bytes,
      memory_batch=1, inference_split=1, tflite_bytes=0, machine="constructed",
      backend="cpu", versions={}, source_run=os.path.basename(os.path.normpath(workdir)),
      measured_at="2026-01-01T00:00:00+00:00"))
