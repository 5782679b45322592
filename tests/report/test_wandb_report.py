"""W&B paths, with the real client offline: reading runs that have no summary.json, and the
`mnv2-report` run (tables, charts, the Pareto frontier, images), checked by reading what W&B
recorded."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mnv2_jax.logging import WandbWriter
from mnv2_jax.logging import read_offline_run
from mnv2_jax.report import cli
from mnv2_jax.results import collect
from mnv2_jax.results import testing


def test_run_without_summary_is_read_from_its_offline_wandb_run(tmp_path):
  workdir = str(tmp_path / "sweep" / "v2_w0.5_r32_linear_none_s1")
  config = {"seed": 1, "model": {"name": "mobilenet_v2", "width_multiplier": 0.5,
                                 "expansion_factor": 6.0, "bottleneck_activation": "linear",
                                 "shortcut": "none"},
            "input": {"dataset": "sklearn_digits", "resolution": 32}}
  writer = WandbWriter(workdir, mode="offline", group="grp", name="v2_w0.5_r32_linear_none_s1",
                       config=config)
  assert writer.mode == "offline"
  for step, top1 in ((10, 0.5), (20, 0.75), (30, 0.7)):
    writer.write_scalars(step, {"eval/top1": top1, "eval/top5": top1 + 0.1})
  writer.write_summary({"madds": 1_234_567})
  writer.close()
  assert not os.path.exists(os.path.join(workdir, "summary.json"))
  (record,) = collect.collect(str(tmp_path / "sweep"))
  assert record.source == "wandb" and record.status == "finished"
  assert (record.variant, record.width, record.seed, record.group) == (
      "linear/none", 0.5, 1, "grp")
  assert (record.best_top1, record.final_top1, record.madds) == (0.75, 0.7, 1_234_567)
  assert record.curve == ((10, 0.5), (20, 0.75), (30, 0.7))


def _logged_table(run, key):
  """(columns, data) of the table file W&B recorded for ``key`` (its summary's reference)."""
  ref = run["summary"][key]
  assert ref["_type"] == "table-file", ref
  # The history row (flattened keys) points at the same file.
  assert [row[key + ".path"] for row in run["history"] if key + ".path" in row] == [ref["path"]]
  with open(os.path.join(run["run_dir"], "files", ref["path"]), encoding="utf-8") as f:
    table = json.load(f)
  return table["columns"], table["data"]


def test_wandb_report_run(tmp_path):
  sweep = tmp_path / "sweep"
  expected_points = []   # (MMAdds, final top-1 %) of each run: distinct, so a swap shows
  for act, finals in (("linear", (0.9, 0.92)), ("relu6", (0.88, 0.91))):
    for seed, final in enumerate(finals):
      madds = 50_000_000 + 1_000_000 * len(expected_points)
      expected_points.append((madds / 1e6, 100 * final))
      testing.write_run(str(sweep / f"{act}_s{seed}"), bottleneck_activation=act, seed=seed,
                        curve=[(10, final - 0.2), (20, final)], group="grp", madds=madds)
  assert cli.main([str(sweep), "--wandb_mode=offline"]) == 0
  out = str(sweep / "results")
  run = read_offline_run(out, reader="parser")
  assert (run["job_type"], run["group"], run["name"]) == ("report", "grp", "grp-report")
  keys = set().union(*(row.keys() for row in run["history"]))
  for key in ("results/runs", "results/aggregate", "results/deltas",
              "results/top1_vs_madds", "results/curves"):
    assert any(k.startswith(key) for k in keys), (key, keys)
  columns, data = _logged_table(run, "results/top1_vs_madds_table")  # the scatter's data
  assert columns[:2] == ["mmadds", "top1"]
  # Sorted by MAdds (distinct per run), so each top-1 is paired with its own run's MAdds.
  np.testing.assert_allclose(sorted(tuple(row[:2]) for row in data), sorted(expected_points),
                             rtol=1e-9)
  assert any(k.startswith("plots/fig6_") for k in keys)
  columns, data = _logged_table(run, "results/frontier")   # Fig. 5's points and frontier
  rows = {row[columns.index("series")]: dict(zip(columns, row)) for row in data}
  assert set(rows) == {"linear/bottleneck", "relu6/bottleneck"}
  assert rows["linear/bottleneck"]["top1_mean"] == pytest.approx(91.0)
  assert rows["relu6/bottleneck"]["top1_std"] == pytest.approx(np.std([88, 91], ddof=1))
  assert all(r["on_frontier"] and r["n"] == 2 for r in rows.values())
  assert any(k.startswith("results/frontier_chart") for k in keys)
  assert os.path.exists(str(sweep / "plots" / "fig5.png"))
  assert os.path.exists(str(sweep / "results" / "report.md"))
  claims_md = (sweep / "results" / "claims.md").read_text(encoding="utf-8")
  assert "- Linear bottleneck > ReLU6 in bottleneck: unresolved" in claims_md  # 2 seeds, wide CI
  columns, data = _logged_table(run, "results/claims")
  verdicts = {r[columns.index("claim")]: r[columns.index("verdict")] for r in data
              if r[columns.index("scope")] == "pooled"}
  assert verdicts["Linear bottleneck > ReLU6 in bottleneck"] == "unresolved"
  assert verdicts["V2 above V1 at equal MAdds"] == "not run"
  assert run["summary"]["claim_verdicts"] == verdicts
  assert run["summary"]["runs"] == 4
  (sentence,) = run["summary"]["comparisons"]
  assert sentence.startswith("bottleneck_activation=relu6 is 1.50 ± ")
  assert os.path.exists(os.path.join(out, "plots", "fig5.png"))
  # The report run is not mistaken for a training run, even outside results/.
  assert len(collect.collect(str(sweep))) == 4
  os.rename(out, str(sweep / "copied_report"))
  assert sorted(r.name for r in collect.collect(str(sweep))) == [
      "linear_s0", "linear_s1", "relu6_s0", "relu6_s1"]


def test_wandb_report_logs_the_measured_cost_frontiers(tmp_path):
  """Runs with an efficiency.json (constructed costs): latency and memory frontiers logged."""
  sweep = tmp_path / "sweep"
  for name, width, top1, ms, mem in (("a", 0.35, 0.80, 1.0, 3e5), ("b", 0.5, 0.70, 2.0, 2e5),
                                     ("c", 0.75, 0.85, 3.0, 1e5)):
    w = testing.write_run(str(sweep / name), width=width, curve=[(10, top1)], group="grp")
    testing.write_efficiency(w, latency_ms=ms, peak_memory_bytes=int(mem))
  assert cli.main([str(sweep), "--wandb_mode=offline"]) == 0
  run = read_offline_run(str(sweep / "results"), reader="parser")
  keys = set().union(*(row.keys() for row in run["history"]))
  assert any(k.startswith("results/frontier_latency_chart") for k in keys)
  assert any(k.startswith("results/frontier_memory_chart") for k in keys)
  assert any(k.startswith("plots/fig5_latency") for k in keys)
  columns, data = _logged_table(run, "results/frontier_latency")
  on = {r[columns.index("latency_ms")]: r[columns.index("on_frontier")] for r in data}
  assert on == {1.0: True, 2.0: False, 3.0: True}
  columns, data = _logged_table(run, "results/frontier_memory")
  on = {r[columns.index("peak_mem_mb")]: r[columns.index("on_frontier")] for r in data}
  assert on == {0.3: False, 0.2: False, 0.1: True}
  columns, data = _logged_table(run, "results/runs")
  assert sorted(r[columns.index("latency_ms")] for r in data) == [1.0, 2.0, 3.0]


def test_wandb_report_logs_each_metric_apart(tmp_path):
  """A sweep dir with classifier and detection runs: each metric's tables, charts and figures
  under its own keys; the detection frontier in mAP; the claims from the top-1 runs."""
  sweep = tmp_path / "sweep"
  for act, top1, mAP in (("linear", 0.9, 0.24), ("relu6", 0.88, 0.2)):
    for seed in (0, 1):
      testing.write_run(str(sweep / f"cls_{act}_s{seed}"), bottleneck_activation=act,
                        seed=seed, curve=[(10, top1 - 0.2), (20, top1 + seed / 100)],
                        group="grp")
      testing.write_run(str(sweep / f"det_{act}_s{seed}"), head="ssdlite", resolution=64,
                        bottleneck_activation=act, seed=seed, group="grp",
                        curve=[(10, mAP / 2), (20, mAP + seed / 100)])
  assert cli.main([str(sweep), "--wandb_mode=offline"]) == 0
  run = read_offline_run(str(sweep / "results"), reader="parser")
  keys = set().union(*(row.keys() for row in run["history"]))
  for key in ("results/aggregate", "results/aggregate_mAP", "results/deltas_mAP",
              "results/top1_vs_madds", "results/mAP_vs_madds", "results/curves_mAP",
              "results/frontier_mAP_chart", "plots/fig5_mAP", "plots/fig5"):
    assert any(k.startswith(key) for k in keys), (key, sorted(keys))
  columns, data = _logged_table(run, "results/frontier_mAP")
  rows = {row[columns.index("series")]: dict(zip(columns, row)) for row in data}
  assert rows["linear/bottleneck"]["mAP_mean"] == pytest.approx(24.5)
  columns, data = _logged_table(run, "results/aggregate_mAP")
  assert "final_mAP_mean" in columns and "final_top1_mean" not in columns
  columns, data = _logged_table(run, "results/claims")
  (linear,) = [r for r in data if r[columns.index("claim")] ==
               "Linear bottleneck > ReLU6 in bottleneck" and r[columns.index("scope")] == "pooled"]
  assert linear[columns.index("n")] == 2   # the two top-1 seeds, not the detectors
  assert len(run["summary"]["comparisons"]) == 2   # one paired delta per metric
  assert any("final mAP" in s for s in run["summary"]["comparisons"])
