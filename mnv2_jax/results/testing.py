"""Writing constructed run workdirs (the trainer's file contract) for tests and demos.

``write_run`` produces ``config.json``, ``metrics.jsonl`` and ``summary.json`` exactly as the
trainer documents them (accuracies as fractions), from numbers the caller chooses, so results
and plotting code can be tested against known inputs without training anything.
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
              config_updates: dict[str, Any] | None = None) -> str:
  """Writes one constructed run; ``final_top1``/``best_top1`` default to the curve's last/max.

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
  for path, value in (config_updates or {}).items():
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  with open(os.path.join(workdir, run_record.CONFIG), "w", encoding="utf-8") as f:
    json.dump(config, f)
  with open(os.path.join(workdir, run_record.METRICS), "w", encoding="utf-8") as f:
    for step, top1 in curve:
      f.write(json.dumps({"step": step, "train/loss": 1.0, "eval/top1": top1,
                          "eval/top5": top5 if top5 is not None else min(1.0, top1 + 0.05),
                          "eval/loss": 1.0}) + "\n")
  if write_summary and status is not None:
    if final_top1 is None and curve:
      final_top1 = curve[-1][1]
    if best_top1 is None and curve:
      best_top1 = max(v for _, v in curve)
    best_step = max(curve, key=lambda p: p[1])[0] if curve else None
    cplx = run_record.compute_figures(config, num_classes=10)
    summary = run_record.Summary.of_config(
        config, dataclasses.replace(cplx, madds=cplx.madds if madds is None else madds),
        status=status, final_top1=final_top1, final_top5=top5, best_top1=best_top1,
        best_top5=top5, best_step=best_step, steps=curve[-1][0] if curve else 0, epochs=12.0,
        wall_time_s=wall_time_s)
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
