"""Result tables: every run, per-variant aggregates over seeds, and paired deltas vs baseline.

The value is each run's primary metric (`collect.RunRecord.metric_name`: top-1 for the
classifier, mAP / mIoU for detection / segmentation), in percent (the trainer's fractions x
100); deltas are in percentage points. ``metric`` chooses which value the aggregates and deltas
use: ``final`` (at the end of training; the default, since picking the best eval step on the
validation set is optimistic) or ``best``. Columns carry the metric's name: ``final_top1``,
``final_top1_mean`` for the classifier (as always), ``final_mAP``, ``final_mAP_mean`` for a
detector. Aggregates and deltas take runs of one metric (`grouping.groups` rejects a mix; split
with `collect.by_metric`); the per-run table takes any, with one column pair per metric.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mnv2_jax.results import collect
from mnv2_jax.results import costs
from mnv2_jax.results import grouping
from mnv2_jax.results import stats

Row = dict[str, Any]


def _pct(x: float | None) -> float | None:
  return None if x is None else 100.0 * float(x)


def _mmadds(madds: int | None) -> float | None:
  return None if madds is None else round(madds / 1e6, 1)


def _measured(runs: Sequence[collect.RunRecord], names: Sequence[str]) -> Row:
  """Each measured cost's column (`costs.COSTS`), its mean over `runs` that have it (runs of
  one group share one measurement)."""
  out = {}
  for cost in map(costs.get, names):
    values = [v for v in map(cost.of, runs) if v is not None]
    out[cost.column] = round(sum(values) / len(values), 4) if values else None
  return out


def _metric_columns(r: collect.RunRecord, metrics: Sequence[str]) -> Row:
  """The final/best columns of each metric in `metrics`: top-1 with top-5 (the classifier's
  columns, as they always were), "final_<metric>" / "best_<metric>" for the others; a run has
  values in its own metric's columns only."""
  out: Row = {}
  for m in metrics:
    mine = r.metric_name == m
    if m == collect.TOP1:
      out.update({"final_top1": _pct(r.final_top1), "final_top5": _pct(r.final_top5),
                  "best_top1": _pct(r.best_top1), "best_top5": _pct(r.best_top5)})
    else:
      out.update({f"final_{m}": _pct(r.final_metric) if mine else None,
                  f"best_{m}": _pct(r.best_metric) if mine else None})
  return out


def run_rows(records: Sequence[collect.RunRecord]) -> list[Row]:
  """One row per run, sorted by model, dataset, MAdds, variant, seed.

  Settings that differ among the runs (`grouping.varying_settings`) get a column each, and so
  do the measured costs (`costs.measured_present`: latency in ms, peak inference memory in MB)
  and the metrics (`_metric_columns`). Dense runs add a "task" column.
  """
  varying = grouping.varying_settings(records)
  measured = costs.measured_present(records)
  metrics = list(collect.by_metric(records))
  dense = any(r.task != collect.CLASSIFICATION for r in records)
  rows = []
  for r in sorted(records, key=lambda r: (r.model, str(r.dataset), r.madds or 0, r.width,
                                          r.resolution, r.variant, repr(sorted(r.settings.items())),
                                          r.seed)):
    rows.append({
        "run": r.name, "status": r.status, "model": r.model, "variant": r.variant,
        "width": r.width, "resolution": r.resolution, "seed": r.seed, "dataset": r.dataset,
        **({"task": r.task} if dense else {}), **{k: r.settings.get(k) for k in varying},
        "madds_m": _mmadds(r.madds),
        "params_m": None if r.params is None else round(r.params / 1e6, 3),
        **_measured([r], measured),
        **_metric_columns(r, metrics), "best_step": r.best_step, "steps": r.steps,
        "wall_time_s": None if r.wall_time_s is None else round(float(r.wall_time_s), 1),
        "studies": "+".join(r.studies), "source": r.source})
  return rows


def aggregate_rows(records: Sequence[collect.RunRecord], metric: str = "final",
                   confidence: float = stats.DEFAULT_CONFIDENCE) -> list[Row]:
  """Mean, std and t-CI of the metric (and mean top-5 for top-1) over the seeds of each
  experiment group: columns "<metric>_<name>_mean", "..._std" ("final_top1_mean")."""
  groups = grouping.groups(records, metric)
  name = collect.metric_of(records)
  varying = grouping.varying_settings(grouping.finished(records, metric))
  measured = costs.measured_present(records)
  rows = []
  for g in groups:
    r = g.first
    value = stats.summarize(g.values(metric), confidence)
    top5 = [100 * v for v in (x.final_top5 if metric == "final" else x.best_top5
                              for x in g.runs) if v is not None]
    rows.append({
        "model": r.model, "dataset": r.dataset, "width": r.width, "resolution": r.resolution,
        "variant": g.label(varying), "epochs": None if r.epochs is None else round(r.epochs, 3),
        "madds_m": _mmadds(r.madds), **_measured(g.runs, measured), "n": value.n,
        "seeds": " ".join(str(s) for s in g.per_seed(metric)),
        f"{metric}_{name}_mean": value.mean, f"{metric}_{name}_std": value.std,
        "ci_lo": value.ci[0], "ci_hi": value.ci[1],
        **({f"{metric}_top5_mean": sum(top5) / len(top5) if top5 else None}
           if name == collect.TOP1 else {})})
  return rows


def _fmt_madds(madds: int | None) -> str:
  if madds is None:
    return "unknown MAdds"
  m = madds / 1e6
  return f"{m:.0f} M MAdds" if m >= 100 else f"{m:.3g} M MAdds"


def sentence(what: str, ref: str, madds: int | None, width: float, res: int,
             dataset: str | None, delta: stats.PairedDelta, metric: str,
             name: str = collect.TOP1) -> str:
  """A readable statement of one paired comparison (deltas in points): `what` vs `ref`, in
  the `metric` ("final" | "best") value of metric `name`."""
  d = delta.summary
  value = f"{metric} {collect.metric_label(name)}"
  direction = "below" if d.mean < 0 else "above"
  where = f"{_fmt_madds(madds)} (width {width:g}, {res} px{', ' + dataset if dataset else ''})"
  if d.n < 2:
    return (f"{what} is {abs(d.mean):.2f} points {direction} {ref} at {where}; 1 seed, so "
            f"no interval ({value}).")
  lo, hi = delta.bootstrap
  spans_zero = [kind for kind, (a, b) in (("t-interval", d.ci), ("bootstrap CI", (lo, hi)))
                if a <= 0 <= b]
  verdict = (f"; the {' and the '.join(spans_zero)} include{'s' if len(spans_zero) == 1 else ''}"
             " 0" if spans_zero else "")
  return (f"{what} is {abs(d.mean):.2f} ± {d.ci_half:.2f} points {direction} {ref} at {where} "
          f"({value}, {d.n} paired seeds; mean ± 95% t-interval, bootstrap 95% CI of "
          f"the difference [{lo:+.2f}, {hi:+.2f}]{verdict}).")


def delta_rows(records: Sequence[collect.RunRecord], metric: str = "final",
               baseline: Mapping[str, Any] | None = None,
               confidence: float = stats.DEFAULT_CONFIDENCE,
               n_boot: int = stats.DEFAULT_BOOTSTRAP, seed: int = stats.DEFAULT_RNG_SEED
               ) -> list[Row]:
  """Each experiment minus its equal-compute baseline (`grouping.baseline_key`), by seed.

  `baseline` overrides the declared baselines of compute-neutral axes ({field: value}).
  """
  all_groups = grouping.groups(records, metric)
  name = collect.metric_of(records)
  by_key = {g.key: g for g in all_groups}
  varying = grouping.varying_settings(grouping.finished(records, metric))
  rows = []
  for g in all_groups:
    key = grouping.baseline_key(g, baseline)
    base = by_key.get(key) if key is not None else None
    if base is None:
      continue
    delta = stats.paired_delta(base.per_seed(metric), g.per_seed(metric), confidence, n_boot,
                               seed)
    if delta is None:
      continue
    r = g.first
    what, ref = grouping.contrast(g, base)
    settings = g.settings_text(varying)
    rows.append({
        "model": r.model, "dataset": r.dataset, "width": r.width, "resolution": r.resolution,
        "madds_m": _mmadds(r.madds), "variant": g.label(varying), "baseline": base.label(varying),
        "n": delta.summary.n, "delta_mean": delta.summary.mean, "delta_std": delta.summary.std,
        "t_ci_half": delta.summary.ci_half, "boot_lo": delta.bootstrap[0],
        "boot_hi": delta.bootstrap[1],
        "sentence": sentence(what, ref, r.madds, r.width, r.resolution,
                             ", ".join(x for x in (r.dataset, settings) if x) or None, delta,
                             metric, name)})
  return rows


def _cell(value: Any) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return ""
  if isinstance(value, float):
    if 0 < abs(value) < 0.1:  # e.g. the latency (ms) or memory (MB) of a tiny model
      return f"{value:.2g}"
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
