"""End to end on real (tiny) training runs: mnv2-sweep -> trainer -> mnv2-results/mnv2-plot.

Two Fig. 6b variants on the embedded digits data, 6 steps each, run as real `mnv2_jax.main`
subprocesses by the launcher (2 in parallel), then `--report` builds the tables, the plots and
the W&B report run, after `--measure` attached each run's latency and peak memory. The numbers
in the tables must be the ones the runs (and the measurement) wrote.
"""

from __future__ import annotations

import csv
import json
import os

import pytest

from mnv2_jax.logging import read_metrics
from mnv2_jax.sweeps import launch

TINY = ["--set", "train.num_steps=6", "--set", "optim.warmup_epochs=0",
        "--set", "input.global_batch_size=16", "--set", "train.eval_every_steps=3",
        "--set", "train.log_every_steps=1", "--set", "wandb.mode=offline"]


@pytest.mark.slow(seconds=150)
def test_digits_sweep_report_from_real_runs(tmp_path):
  sweep_dir = str(tmp_path / "sweep")
  rc = launch.main(["experiments/fig6b_shortcut.py", "--preset=digits", "--seeds=1",
                    f"--sweep_dir={sweep_dir}", "--only=bottleneck|none", "--parallel=2",
                    "--measure", "--report", *TINY])
  assert rc == 0
  runs = sorted(d for d in os.listdir(sweep_dir) if d.startswith("v2_"))
  assert runs == ["v2_w0.35_r32_linear_bottleneck_s0", "v2_w0.35_r32_linear_none_s0"]
  summaries = {}
  for name in runs:
    with open(os.path.join(sweep_dir, name, "summary.json")) as f:
      summaries[name] = json.load(f)
    assert summaries[name]["status"] == "finished" and summaries[name]["steps"] == 6
    evals = [r for r in read_metrics(os.path.join(sweep_dir, name, "metrics.jsonl"))
             if "eval/top1" in r]
    assert [r["step"] for r in evals] == [3, 6]
  with open(os.path.join(sweep_dir, "results", "runs.csv")) as f:
    rows = {r["run"]: r for r in csv.DictReader(f)}
  assert set(rows) == set(runs)
  for name, s in summaries.items():
    assert float(rows[name]["final_top1"]) == pytest.approx(100 * s["final/top1"], abs=0.01)
    assert float(rows[name]["madds_m"]) == pytest.approx(s["madds"] / 1e6, abs=0.01)
    # --measure attached each run's measured latency and peak memory before the report.
    with open(os.path.join(sweep_dir, name, "efficiency.json")) as f:
      eff = json.load(f)
    assert float(rows[name]["latency_ms"]) == pytest.approx(eff["latency_ms"], abs=1e-4)
    assert float(rows[name]["peak_mem_mb"]) == pytest.approx(eff["peak_memory_bytes"] / 1e6,
                                                             abs=1e-4)
  with open(os.path.join(sweep_dir, "results", "report.md")) as f:
    assert "shortcut=none" in f.read()
  plots = os.listdir(os.path.join(sweep_dir, "plots"))
  assert {"fig5.png", "fig5.svg", "fig5_latency.png", "fig5_memory.png"} <= set(plots)
  assert any(p.startswith("fig6_") and p.endswith(".png") for p in plots)
  # Each run kept its own offline W&B run, grouped by the sweep.
  from mnv2_jax.logging import read_offline_run
  run = read_offline_run(os.path.join(sweep_dir, runs[0]))
  assert run["group"] == "fig6b_shortcut.digits" and run["config"]["madds"] > 0
