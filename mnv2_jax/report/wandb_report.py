"""A W&B "report" run for a sweep: result tables, scatter/line charts and the PNG figures.

One run with ``job_type="report"`` in the sweep's group (so it sits next to the training runs
in the W&B UI), logged through ``mnv2_jax.logging.WandbWriter`` (offline when there is no
login; never raises). Logged keys: ``results/runs``, ``results/aggregate``, ``results/deltas``
(``wandb.Table``), ``results/top1_vs_madds`` (``wandb.plot.scatter``), ``results/curves``
(``wandb.plot.line``, one stroke per variant and operating point), ``results/frontier``
(``wandb.Table`` of Fig. 5's points, mean/std over seeds, each marked on or off its series'
Pareto frontier) with ``results/frontier_chart`` (``wandb.plot.line`` of the frontier points,
one stroke per series), the same two for each measured cost of ``mnv2-measure``
(``results/frontier_latency[_chart]``, ``results/frontier_memory[_chart]``; the runs and
aggregate tables then carry ``latency_ms`` and ``peak_mem_mb`` columns), ``results/claims``
(``wandb.Table`` of the paper's claims and verdicts, `mnv2_jax.results.claims_table.log_claims`)
and ``plots/<figure>`` (``wandb.Image`` of each PNG); the summary holds the delta sentences and
the claims' verdicts.

Runs of a metric other than top-1 (detection mAP, segmentation mIoU) get the same keys with the
metric as suffix (`collect.metric_suffix`: ``results/aggregate_mAP``, ``results/frontier_mAP``,
``results/curves_mAP``) and ``results/mAP_vs_madds``; metrics are never mixed in one table or
chart.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence
from typing import Any

from mnv2_jax import ablations
from mnv2_jax import run_record
from mnv2_jax.logging import WandbWriter
from mnv2_jax.plots import cli as plots_cli
from mnv2_jax.plots import fig5
from mnv2_jax.plots import fig6
from mnv2_jax.results import claims_table
from mnv2_jax.results import collect
from mnv2_jax.results import costs


def _table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
  columns = list(rows[0]) if rows else []
  return columns, [[r.get(c) for c in columns] for r in rows]


def _group(records: Sequence[collect.RunRecord], out: str) -> str:
  groups = collections.Counter(r.group for r in records if r.group)
  return groups.most_common(1)[0][0] if groups else os.path.basename(os.path.abspath(out))


def curve_rows(records: Sequence[collect.RunRecord]) -> list[list[Any]]:
  """[step, mean metric %, series] rows of every Fig. 6 curve (series = variant @ point) of
  runs of one metric."""
  rows = []
  by_series = collections.defaultdict(list)
  for r in records:
    if ablations.axes(r.model) and r.curve:
      by_series[f"{r.variant} w{r.width:g} r{r.resolution}"].append(r.curve)
  for series, curves in sorted(by_series.items()):
    steps, mean, _, _, _ = fig6.seed_band(curves)
    rows += [[int(s), float(100 * m), series] for s, m in zip(steps, mean)]
  return rows


def _log_frontier(writer, records, metric: str, cost: str) -> None:
  """`results/frontier[_<cost>][_<metric>]` table and `..._chart` line plot of one cost axis,
  for records of one metric."""
  frontier = fig5.frontier_rows(records, metric, cost)
  if not frontier:
    return
  axis = costs.get(cost)
  name = collect.metric_of(records)
  suffix = ("" if cost == "madds" else f"_{cost}") + collect.metric_suffix(name)
  writer.log_table(f"results/frontier{suffix}", *_table(frontier))
  on = [[r[axis.column], r[f"{name}_mean"], r["series"]] for r in frontier if r["on_frontier"]]
  writer.log_plot(f"results/frontier{suffix}_chart", "line", [axis.column, name, "series"],
                  on, x=axis.column, y=name, stroke="series",
                  title=f"Pareto frontier per series in {axis.title} ({metric} "
                        f"{collect.metric_label(name)}, mean over seeds)")


def _log_metric(writer, records, tables, metric: str, name: str) -> list[str]:
  """Everything of one metric's runs (`records`, all of metric `name`; `tables` their
  (runs, aggregate, deltas) rows); returns the delta sentences."""
  runs, aggregate, deltas = tables
  suffix = collect.metric_suffix(name)
  label = collect.metric_label(name)
  for key, rows in (("runs", runs), ("aggregate", aggregate), ("deltas", deltas)):
    if rows:
      writer.log_table(f"results/{key}{suffix}", *_table(rows))
  points = [[r.madds / 1e6, 100 * r.metric(metric), r.variant, r.width, r.resolution, r.seed]
            for r in records
            if r.status == run_record.FINISHED and r.madds and r.metric(metric) is not None]
  if points:
    writer.log_plot(f"results/{name}_vs_madds", "scatter",
                    ["mmadds", name, "variant", "width", "resolution", "seed"], points,
                    x="mmadds", y=name, title=f"{metric} {label} vs MAdds")
  for cost in ("madds", *costs.measured_present(records)):
    _log_frontier(writer, records, metric, cost)
  curves = curve_rows(records)
  if curves:
    writer.log_plot(f"results/curves{suffix}", "line", ["step", name, "series"], curves,
                    x="step", y=name, stroke="series",
                    title=f"eval {label} vs step (mean over seeds)")
  return [d["sentence"] for d in deltas]


def log_report(records: Sequence[collect.RunRecord], tables: dict[str, tuple], *, out: str,
               mode: str = "auto", metric: str = "final", project: str = "mnv2_jax",
               group: str | None = None, claims: Sequence[Any] = ()) -> str | None:
  """Logs the report run under ``out``; returns its local run dir (None if W&B is off).

  `tables` is {metric name: (runs, aggregate, deltas) rows} as `results.cli.build_by_metric`
  gives them; `claims` are about the top-1 runs.
  """
  group = group or _group(records, out)
  writer = WandbWriter(out, mode=mode, project=project, group=group, job_type="report",
                       name=f"{group}-report", tags=["report"],
                       config={"metric": metric, "runs": len(records)})
  claims_table.log_claims(writer, claims)
  by_metric = collect.by_metric(records)
  comparisons = []
  for name, rows in tables.items():
    comparisons += _log_metric(writer, by_metric.get(name, []), rows, metric, name)
  for path in plots_cli.render_all(records, os.path.join(out, "plots"), metric=metric):
    if path.endswith(".png"):
      stem = os.path.splitext(os.path.basename(path))[0]
      writer.log_image(f"plots/{stem}", path, caption=stem)
  writer.write_summary({"runs": len(records),
                        "finished": sum(r.status == run_record.FINISHED for r in records),
                        "comparisons": comparisons})
  run_dir = writer.run_dir
  writer.close()
  return run_dir
