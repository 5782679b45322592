"""Detection / segmentation runs in the results tables: each run scored by its own metric (mAP,
mIoU), never averaged or compared with another metric's runs; on constructed run dirs written
as `train_dense` writes them (`testing.write_run(head=...)`, `run_record.Summary.of_dense`)."""

from __future__ import annotations

import csv
import json
import os

import pytest

from mnv2_jax import run_record
from mnv2_jax.results import cli
from mnv2_jax.results import collect
from mnv2_jax.results import grouping
from mnv2_jax.results import tables
from mnv2_jax.results import testing

# Final mAP (fractions) per bottleneck activation and seed of SSDLite runs.
MAP = {"linear": [0.20, 0.24], "relu6": [0.18, 0.19]}
# Final top-1 of classifier runs in the same sweep dir.
TOP1 = {"linear": [0.90, 0.92], "relu6": [0.89, 0.90]}


def _write_mixed(d) -> str:
  for act, finals in MAP.items():
    for seed, final in enumerate(finals):
      testing.write_run(str(d / f"det_{act}_s{seed}"), head="ssdlite", resolution=64,
                        bottleneck_activation=act, seed=seed,
                        curve=[(10, final + 0.05), (20, final)])   # best != final
  for act, finals in TOP1.items():
    for seed, final in enumerate(finals):
      testing.write_run(str(d / f"cls_{act}_s{seed}"), bottleneck_activation=act, seed=seed,
                        curve=[(10, final - 0.1), (20, final)])
  return str(d)


def _csv(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def test_dense_run_is_scored_by_its_own_metric(tmp_path):
  d = tmp_path / "sweep"
  _write_mixed(d)
  with open(d / "det_linear_s1" / run_record.SUMMARY, encoding="utf-8") as f:
    summary = json.load(f)
  assert (summary["task"], summary["metric"], summary["final_metric"]) == (
      "detection", "mAP", 0.24)
  r = collect.read_run(str(d / "det_linear_s1"))
  assert (r.task, r.metric_name) == ("detection", "mAP")
  assert (r.metric("final"), r.metric("best")) == (0.24, pytest.approx(0.29))
  assert r.final_top1 is None and r.best_top1 is None
  assert r.curve == ((10, pytest.approx(0.29)), (20, 0.24))      # from eval/mAP, not eval/AP50
  # What train_dense adds to config.json (task, madds_space_to_batch) is not a setting.
  assert r.settings["head.name"] == "ssdlite"
  assert not {"task", "madds_space_to_batch", "madds", "params"} & set(r.settings)
  c = collect.read_run(str(d / "cls_relu6_s0"))
  assert (c.task, c.metric_name, c.metric("final")) == ("classification", "top1", 0.89)


def test_config_with_head_and_no_summary_is_a_dense_run(tmp_path):
  """An interrupted segmentation run (config.json + metrics.jsonl only): its task from the
  config's head, its best so far from its eval/mIoU curve."""
  w = testing.write_run(str(tmp_path / "seg"), head="deeplabv3", curve=[(5, 0.3), (10, 0.4),
                                                                          (15, 0.35)],
                        write_summary=False)
  r = collect.read_run(w)
  assert (r.task, r.metric_name) == ("segmentation", "mIoU")
  assert (r.best_metric, r.best_step, r.final_metric) == (0.4, 10, None)
  assert r.best_top1 is None and r.status == "interrupted"


def test_metrics_are_never_mixed(tmp_path):
  records = collect.collect(_write_mixed(tmp_path / "sweep"))
  assert list(collect.by_metric(records)) == ["top1", "mAP"]
  with pytest.raises(ValueError, match=r"different metrics \(mAP, top1\)"):
    grouping.groups(records, "final")
  with pytest.raises(ValueError, match="different metrics"):
    tables.aggregate_rows(records)
  runs = tables.run_rows(records)   # the per-run table takes any: a column pair per metric
  det = next(r for r in runs if r["run"] == "det_relu6_s1")
  cls = next(r for r in runs if r["run"] == "cls_relu6_s1")
  assert (det["task"], det["final_mAP"], det["final_top1"]) == ("detection", 19.0, None)
  assert (cls["task"], cls["final_mAP"], cls["final_top1"]) == ("classification", None, 90.0)


def test_dense_aggregates_and_deltas_are_in_the_metric(tmp_path):
  det = collect.by_metric(collect.collect(_write_mixed(tmp_path / "sweep")))["mAP"]
  agg = {r["variant"]: r for r in tables.aggregate_rows(det)}
  assert agg["linear/bottleneck"]["final_mAP_mean"] == pytest.approx(22.0)
  assert agg["relu6/bottleneck"]["final_mAP_std"] == pytest.approx(0.7071, abs=1e-4)
  assert "final_top5_mean" not in agg["linear/bottleneck"]
  best = {r["variant"]: r for r in tables.aggregate_rows(det, "best")}
  assert best["linear/bottleneck"]["best_mAP_mean"] == pytest.approx(27.0)
  (delta,) = tables.delta_rows(det)
  assert delta["delta_mean"] == pytest.approx(-3.5)      # (18-20 + 19-24) / 2
  assert "(final mAP, 2 paired seeds" in delta["sentence"]
  assert "top-1" not in delta["sentence"]


def test_cli_writes_each_metrics_tables(tmp_path, capsys):
  sweep = _write_mixed(tmp_path / "sweep")
  assert cli.main([sweep, "--claims"]) == 0
  out = os.path.join(sweep, "results")
  names = set(os.listdir(out))
  for stem in ("runs", "aggregate", "deltas"):
    assert {f"{stem}.csv", f"{stem}_mAP.csv", f"{stem}.md", f"{stem}_mAP.md"} <= names
  top1 = {r["variant"]: r for r in _csv(os.path.join(out, "aggregate.csv"))}
  det = {r["variant"]: r for r in _csv(os.path.join(out, "aggregate_mAP.csv"))}
  assert float(top1["linear/bottleneck"]["final_top1_mean"]) == pytest.approx(91.0)
  assert float(det["linear/bottleneck"]["final_mAP_mean"]) == pytest.approx(22.0)
  assert {r["run"] for r in _csv(os.path.join(out, "runs_mAP.csv"))} == {
      f"det_{a}_s{s}" for a in MAP for s in (0, 1)}
  report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
  assert f"# Results of {sweep}: mAP" in report and "final mAP (%)" in report
  assert "final top-1 (%)" in report
  claims = _csv(os.path.join(out, "claims.csv"))   # from the 4 top-1 runs only
  linear = next(c for c in claims if c["claim"] == "Linear bottleneck > ReLU6 in bottleneck"
                and c["scope"] == "pooled")
  assert int(linear["n"]) == 2
  assert "det_" not in capsys.readouterr().err


def test_cli_claims_without_top1_runs(tmp_path, capsys):
  d = tmp_path / "sweep"
  for seed in (0, 1):
    testing.write_run(str(d / f"seg_s{seed}"), head="deeplabv3", seed=seed,
                      curve=[(10, 0.3 + seed / 10)])
  assert cli.main([str(d), "--claims"]) == 0
  assert "no top-1 runs, so no claims" in capsys.readouterr().err
  names = set(os.listdir(d / "results"))
  assert "aggregate_mIoU.csv" in names and "aggregate.csv" not in names
  assert "claims.md" not in names
