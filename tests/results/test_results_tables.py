"""Collection, tables and the ``mnv2-results`` CLI on constructed run dirs with known numbers."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from mnv2_jax import run_record
from mnv2_jax.results import cli
from mnv2_jax.results import collect
from mnv2_jax.results import tables
from mnv2_jax.results import testing

# Final top-1 (fractions) per variant and seed at width 0.35 / 32 px.
FINAL = {("linear", "bottleneck"): [0.90, 0.92, 0.91],
         ("relu6", "bottleneck"): [0.89, 0.90, 0.90],
         ("linear", "expansion"): [0.88, 0.91, 0.90]}


@pytest.fixture
def sweep(tmp_path):
  d = tmp_path / "sweep"
  for (act, sc), finals in FINAL.items():
    for seed, final in enumerate(finals):
      testing.write_run(str(d / f"v2_w0.35_r32_{act}_{sc}_s{seed}"), bottleneck_activation=act,
                        shortcut=sc, seed=seed, curve=[(10, final - 0.1), (20, final)])
  testing.write_run(str(d / "v2_w0.35_r32_linear_none_s0"), shortcut="none",
                    curve=[(10, 0.5)], status="running")                # unfinished
  testing.write_run(str(d / "v1_w0.5_r32_s0"), model="mobilenet_v1", width=0.5,
                    curve=[(10, 0.8), (20, 0.85)])
  testing.write_run(str(d / "v2_w0.35_r32_linear_none_s1"), shortcut="none", seed=1,
                    curve=[(10, 0.6), (20, 0.7)], write_summary=False)   # no summary.json
  with open(d / "sweep.json", "w") as f:
    json.dump({"runs": [{"name": "v1_w0.5_r32_s0", "studies": ["fig5_pareto"]}]}, f)
  return str(d)


def test_collect_reads_every_source(sweep):
  records = {r.name: r for r in collect.collect(sweep)}
  assert len(records) == 12
  assert list(records)[0] == "v1_w0.5_r32_s0"          # manifest order first
  assert records["v1_w0.5_r32_s0"].studies == ("fig5_pareto",)
  r = records["v2_w0.35_r32_relu6_bottleneck_s1"]
  assert (r.status, r.source, r.variant, r.seed, r.final_top1) == (
      "finished", "summary", "relu6/bottleneck", 1, 0.90)
  assert r.curve == ((10, pytest.approx(0.8)), (20, 0.90))
  assert r.madds == run_record.compute_figures(
      {"model": {"name": "mobilenet_v2", "width_multiplier": 0.35, "expansion_factor": 6,
                 "bottleneck_activation": "relu6", "shortcut": "bottleneck"},
       "input": {"resolution": 32}}, num_classes=10).madds
  assert records["v2_w0.35_r32_linear_none_s0"].status == "interrupted"
  partial = records["v2_w0.35_r32_linear_none_s1"]
  assert (partial.status, partial.source, partial.best_top1, partial.best_step) == (
      "interrupted", "metrics", 0.7, 20)
  assert partial.final_top1 is None and partial.madds is not None


def test_aggregate_numbers(sweep):
  rows = tables.aggregate_rows(collect.collect(sweep), metric="final")
  by = {r["variant"]: r for r in rows}
  assert set(by) == {"linear/bottleneck", "relu6/bottleneck", "linear/expansion", "v1"}
  base = by["linear/bottleneck"]
  assert base["n"] == 3 and base["seeds"] == "0 1 2"
  assert base["final_top1_mean"] == pytest.approx(91.0)
  assert base["final_top1_std"] == pytest.approx(1.0)             # 90, 92, 91
  half = 4.302652729749464 * 1.0 / math.sqrt(3)                   # t(0.975, df=2)
  assert (base["ci_lo"], base["ci_hi"]) == pytest.approx((91 - half, 91 + half))
  assert by["v1"]["n"] == 1 and math.isnan(by["v1"]["final_top1_std"])
  best = {r["variant"]: r for r in tables.aggregate_rows(collect.collect(sweep), "best")}
  assert best["linear/expansion"]["best_top1_mean"] == pytest.approx(89.666666, abs=1e-5)


def test_deltas_and_sentences(sweep):
  rows = {r["variant"]: r for r in tables.delta_rows(collect.collect(sweep))}
  assert set(rows) == {"relu6/bottleneck", "linear/expansion"}  # none: no finished runs
  relu = rows["relu6/bottleneck"]                                 # deltas -1, -2, -1
  assert relu["n"] == 3 and relu["delta_mean"] == pytest.approx(-4 / 3)
  # Resampled means of (-1, -2, -1) are -2 with probability (1/3)^3 = 3.7% > 2.5% and -1 with
  # (2/3)^3 = 30%: the 95% percentile interval is exactly [-2, -1] (10,000 resamples).
  assert (relu["boot_lo"], relu["boot_hi"]) == pytest.approx((-2.0, -1.0))
  assert relu["sentence"].startswith(
      "bottleneck_activation=relu6 is 1.33 ± ")
  assert "points below bottleneck_activation=linear at 1.2" in relu["sentence"]
  # t-interval: -1.33 ± 4.303 * 0.577 / sqrt(3) = [-2.77, +0.10]; bootstrap within [-2, -1].
  assert relu["t_ci_half"] == pytest.approx(4.302652729749464 * (1 / 3) ** 0.5 / 3 ** 0.5)
  assert relu["sentence"].endswith("; the t-interval includes 0).")
  exp = rows["linear/expansion"]                                  # deltas -2, -1, -1
  assert exp["sentence"].startswith("shortcut=expansion is 1.33 ± ")
  assert "below shortcut=bottleneck" in exp["sentence"]


def test_runs_of_different_length_are_not_paired(tmp_path):
  d = tmp_path / "s"
  testing.write_run(str(d / "a"), curve=[(1, 0.5)])
  testing.write_run(str(d / "b"), shortcut="none", curve=[(1, 0.4)])
  testing.write_run(str(d / "c"), shortcut="none", curve=[(1, 0.3)],
                    config_updates={"train.num_epochs": 99.0})
  (row,) = tables.delta_rows(collect.collect(str(d)))  # b vs a; c has no baseline of its length
  assert row["delta_mean"] == pytest.approx(-10.0)
  assert "num_epochs=12.0" in row["variant"] and "num_epochs=12.0" in row["baseline"]


def test_runs_differing_in_any_experiment_key_are_never_averaged(tmp_path):
  d = tmp_path / "s"
  for seed in (0, 1):
    testing.write_run(str(d / f"lr1_s{seed}"), seed=seed, curve=[(1, 0.5 + seed / 10)])
    testing.write_run(str(d / f"lr2_s{seed}"), seed=seed, curve=[(1, 0.7 + seed / 10)],
                      config_updates={"optim.base_lr": 0.5})
  # Bookkeeping differs between these two seeds' runs: they still form one experiment.
  testing.write_run(str(d / "lr2_s2"), seed=2, curve=[(1, 0.9)],
                    config_updates={"optim.base_lr": 0.5, "train.log_every_steps": 7,
                                    "model.impl.depthwise": "xla"})
  rows = {r["variant"]: r for r in tables.aggregate_rows(collect.collect(str(d)))}
  assert set(rows) == {"linear/bottleneck base_lr=<unset>", "linear/bottleneck base_lr=0.5"}
  assert rows["linear/bottleneck base_lr=0.5"]["n"] == 3
  assert rows["linear/bottleneck base_lr=0.5"]["final_top1_mean"] == pytest.approx(80.0)
  assert rows["linear/bottleneck base_lr=<unset>"]["final_top1_mean"] == pytest.approx(55.0)


def test_cli_writes_csv_and_markdown(sweep, tmp_path, capsys):
  out = str(tmp_path / "out")
  assert cli.main([sweep, "--out", out]) == 0
  printed = capsys.readouterr().out
  assert "## Paired comparisons" in printed and "shortcut=expansion is 1.33" in printed
  for name in ("runs", "aggregate", "deltas"):
    assert os.path.getsize(os.path.join(out, f"{name}.csv")) > 0
    with open(os.path.join(out, f"{name}.md")) as f:
      assert f.readline().startswith("| ")
  with open(os.path.join(out, "runs.csv")) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 12
  row = next(r for r in rows if r["run"] == "v2_w0.35_r32_linear_expansion_s1")
  assert (row["variant"], row["status"], float(row["final_top1"])) == (
      "linear/expansion", "finished", pytest.approx(91.0))
  assert cli.main([str(tmp_path / "missing")]) == 1


def test_placeholder_accuracy_and_study_tags(tmp_path):
  d = tmp_path / "s"
  testing.write_run(str(d / "r"), curve=[], status="running", final_top1=-1.0,
                    best_top1=-1.0, tags=("digits", "fig6b_shortcut", "shortcut=bottleneck"))
  (r,) = collect.collect(str(d))
  assert r.best_top1 is None and r.final_top1 is None  # -1 = "no eval yet"
  assert r.studies == ("fig6b_shortcut",)
  assert tables.aggregate_rows([r]) == [] and tables.delta_rows([r]) == []
