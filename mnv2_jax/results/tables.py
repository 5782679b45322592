"""Result tables: every run, per-variant aggregates over seeds, and paired deltas vs baseline.

Accuracies in the tables are percentages (the trainer's fractions x 100); deltas are in
percentage points. ``metric`` chooses which top-1 the aggregates and deltas use: ``final``
(accuracy at the end of training; the default, since picking the best eval step on the
validation set is optimistic) or ``best``.
"""

from __future__ import annotations

import collections
import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from absl import logging as absl_logging

from mnv2_jax.results import collect
from mnv2_jax.results import stats
from mnv2_jax.sweeps import runner

Row = dict[str, Any]
BASELINE_VARIANT = "linear/bottleneck"
VARIANT_FIELDS = ("bottleneck_activation", "shortcut")


def _pct(x: float | None) -> float | None:
  return None if x is None else 100.0 * float(x)


def _mmadds(madds: int | None) -> float | None:
  return None if madds is None else round(madds / 1e6, 1)


def run_rows(records: Sequence[collect.RunRecord]) -> list[Row]:
  """One row per run, sorted by model, dataset, MAdds, variant, seed."""
  rows = []
  for r in sorted(records, key=lambda r: (r.model, str(r.dataset), r.madds or 0, r.width,
                                          r.resolution, r.variant, r.seed)):
    rows.append({
        "run": r.name, "status": r.status, "model": r.model, "variant": r.variant,
        "width": r.width, "resolution": r.resolution, "seed": r.seed, "dataset": r.dataset,
        "madds_m": _mmadds(r.madds),
        "params_m": None if r.params is None else round(r.params / 1e6, 3),
        "final_top1": _pct(r.final_top1), "final_top5": _pct(r.final_top5),
        "best_top1": _pct(r.best_top1), "best_top5": _pct(r.best_top5),
        "best_step": r.best_step, "steps": r.steps,
        "wall_time_s": None if r.wall_time_s is None else round(float(r.wall_time_s), 1),
        "studies": "+".join(r.studies), "source": r.source})
  return rows


def _finished(records: Sequence[collect.RunRecord], metric: str) -> list[collect.RunRecord]:
  return [r for r in records if r.status == runner.FINISHED and r.metric(metric) is not None]


def _groups(records, metric):
  """Finished runs grouped by (point, expansion factor, variant, epochs).

  The run length is part of the key so runs of different protocols sharing a sweep dir are
  never averaged or paired together.
  """
  groups: dict[tuple, list[collect.RunRecord]] = collections.defaultdict(list)
  for r in _finished(records, metric):
    epochs = None if r.epochs is None else round(float(r.epochs), 3)
    groups[(r.point, r.expansion_factor if r.model == "mobilenet_v2" else None, r.variant,
            epochs)].append(r)
  return groups


def _per_seed(runs: Sequence[collect.RunRecord], metric: str) -> dict[int, float]:
  """{seed: top-1 %}; repeated seeds (the same run twice) are averaged, with a warning."""
  values: dict[int, list[float]] = collections.defaultdict(list)
  for r in runs:
    values[r.seed].append(100 * r.metric(metric))
  repeated = sorted(s for s, v in values.items() if len(v) > 1)
  if repeated:
    absl_logging.warning("%s: seeds %s appear in several runs (%s); averaging them",
                         runs[0].variant, repeated, ", ".join(r.name for r in runs))
  return {s: sum(v) / len(v) for s, v in values.items()}


def aggregate_rows(records: Sequence[collect.RunRecord], metric: str = "final",
                   confidence: float = stats.DEFAULT_CONFIDENCE) -> list[Row]:
  """Mean, std and t-CI of top-1 (and mean top-5) over the finished seeds of each variant."""
  rows = []
  for ((model, dataset, width, res), _, variant, epochs), runs in sorted(
      _groups(records, metric).items(), key=lambda kv: (kv[0][0][0], str(kv[0][0][1]),
                                                        kv[1][0].madds or 0, kv[0][2])):
    top1 = stats.summarize([100 * r.metric(metric) for r in runs], confidence)
    top5 = [100 * v for v in (r.final_top5 if metric == "final" else r.best_top5
                              for r in runs) if v is not None]
    rows.append({
        "model": model, "dataset": dataset, "width": width, "resolution": res,
        "variant": variant, "epochs": epochs, "madds_m": _mmadds(runs[0].madds), "n": top1.n,
        "seeds": " ".join(str(r.seed) for r in sorted(runs, key=lambda r: r.seed)),
        f"{metric}_top1_mean": top1.mean, f"{metric}_top1_std": top1.std,
        "ci_lo": top1.ci[0], "ci_hi": top1.ci[1],
        f"{metric}_top5_mean": sum(top5) / len(top5) if top5 else None})
  return rows


def _describe(variant: str) -> dict[str, str]:
  parts = variant.split("/")
  return dict(zip(VARIANT_FIELDS, parts[:2]))


def _contrast(variant: str, baseline: str) -> tuple[str, str]:
  """("shortcut=expansion", "shortcut=bottleneck"): only the fields that differ."""
  a, b = _describe(variant), _describe(baseline)
  keys = [k for k in VARIANT_FIELDS if a.get(k) != b.get(k)] or list(VARIANT_FIELDS)
  return (", ".join(f"{k}={a[k]}" for k in keys), ", ".join(f"{k}={b[k]}" for k in keys))


def _fmt_madds(madds: int | None) -> str:
  if madds is None:
    return "unknown MAdds"
  m = madds / 1e6
  return f"{m:.0f} M MAdds" if m >= 100 else f"{m:.3g} M MAdds"


def sentence(variant: str, baseline: str, madds: int | None, width: float, res: int,
             dataset: str | None, delta: stats.PairedDelta, metric: str) -> str:
  """A readable statement of one paired comparison (deltas in points)."""
  what, ref = _contrast(variant, baseline)
  d = delta.summary
  direction = "below" if d.mean < 0 else "above"
  where = f"{_fmt_madds(madds)} (width {width:g}, {res} px{', ' + dataset if dataset else ''})"
  if d.n < 2:
    return (f"{what} is {abs(d.mean):.2f} points {direction} {ref} at {where}; 1 seed, so "
            f"no interval ({metric} top-1).")
  lo, hi = delta.bootstrap
  spans_zero = [name for name, (a, b) in (("t-interval", d.ci), ("bootstrap CI", (lo, hi)))
                if a <= 0 <= b]
  verdict = (f"; the {' and the '.join(spans_zero)} include{'s' if len(spans_zero) == 1 else ''}"
             " 0" if spans_zero else "")
  return (f"{what} is {abs(d.mean):.2f} ± {d.ci_half:.2f} points {direction} {ref} at {where} "
          f"({metric} top-1, {d.n} paired seeds; mean ± 95% t-interval, bootstrap 95% CI of "
          f"the difference [{lo:+.2f}, {hi:+.2f}]{verdict}).")


def delta_rows(records: Sequence[collect.RunRecord], metric: str = "final",
               baseline: str = BASELINE_VARIANT,
               confidence: float = stats.DEFAULT_CONFIDENCE,
               n_boot: int = stats.DEFAULT_BOOTSTRAP, seed: int = stats.DEFAULT_RNG_SEED
               ) -> list[Row]:
  """Per MobileNetV2 operating point: each variant minus the baseline, paired by seed."""
  groups = _groups(records, metric)
  rows = []
  for (point, factor, variant, epochs), runs in sorted(
      groups.items(), key=lambda kv: (str(kv[0][0][1]), kv[1][0].madds or 0, kv[0][2])):
    model, dataset, width, res = point
    if model != "mobilenet_v2":
      continue
    base_variant = baseline if factor == 6 else f"{baseline}/t{factor:g}"
    base = groups.get((point, factor, base_variant, epochs))
    if base is None or runs is base:
      continue
    delta = stats.paired_delta(_per_seed(base, metric), _per_seed(runs, metric), confidence,
                               n_boot, seed)
    if delta is None:
      continue
    rows.append({
        "model": model, "dataset": dataset, "width": width, "resolution": res,
        "madds_m": _mmadds(runs[0].madds), "variant": variant, "baseline": base[0].variant,
        "n": delta.summary.n, "delta_mean": delta.summary.mean, "delta_std": delta.summary.std,
        "t_ci_half": delta.summary.ci_half, "boot_lo": delta.bootstrap[0],
        "boot_hi": delta.bootstrap[1],
        "sentence": sentence(variant, base[0].variant, runs[0].madds, width, res, dataset,
                             delta, metric)})
  return rows


def _cell(value: Any) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ""
  if isinstance(value, float):
    return f"{value:.2f}" if abs(value) < 1e5 else f"{value:.4g}"
  return str(value)


def to_csv(rows: Sequence[Row]) -> str:
  if not rows:
    return ""
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: "" if v is None else v for k, v in row.items()})
  return out.getvalue()


def to_markdown(rows: Sequence[Row], columns: Sequence[str] | None = None) -> str:
  if not rows:
    return "(no rows)\n"
  columns = list(columns or rows[0])
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(_cell(r.get(c)).replace("|", "\\|") for c in columns) + " |"
            for r in rows]
  return "\n".join(lines) + "\n"
