"""`mnv2-measure`: measured latency and peak memory attached to run records, then read back by
results and plots; one measurement per architecture; stale records ignored; bad input."""

import json
import os

import jax
import jax.numpy as jnp
import pytest

from mnv2_jax import models
from mnv2_jax import run_record
from mnv2_jax.export import measure
from mnv2_jax.export import measure_cli
from mnv2_jax.plots import cli as plots_cli
from mnv2_jax.plots import fig5
from mnv2_jax.results import collect
from mnv2_jax.results import costs
from mnv2_jax.results import tables
from mnv2_jax.results import testing

pytestmark = pytest.mark.slow(seconds=30)

FAST = ["--warmup=1", "--repeats=3"]


def _sweep(root):
  """Two seeds of the baseline, one shortcut-between-expansions run, a V1 run and an
  unfinished run, as the trainer leaves them (no checkpoints: measuring needs none)."""
  sweep = root / "sweep"
  for seed in (0, 1):
    testing.write_run(str(sweep / f"base_s{seed}"), seed=seed, curve=[(10, 0.6 + seed / 100)])
  testing.write_run(str(sweep / "exp_s0"), shortcut="expansion", curve=[(10, 0.58)])
  testing.write_run(str(sweep / "v1_s0"), model="mobilenet_v1", curve=[(10, 0.5)])
  testing.write_run(str(sweep / "base_s2"), seed=2, status="running", curve=[(10, 0.3)])
  return str(sweep)


def _record(sweep, name):
  with open(os.path.join(sweep, name, run_record.EFFICIENCY)) as f:
    return json.load(f)


def test_sweep_runs_get_records_shared_per_architecture(tmp_path, capsys):
  sweep = _sweep(tmp_path)
  assert measure_cli.main([sweep, "--threads=1,2", *FAST]) == 0
  assert "4 runs (3 architectures) measured" in capsys.readouterr().err
  assert not os.path.exists(os.path.join(sweep, "base_s2", run_record.EFFICIENCY))  # running
  base0, base1, exp, v1 = (_record(sweep, n) for n in ("base_s0", "base_s1", "exp_s0", "v1_s0"))
  assert base0 == base1 and base0["source_run"] == "base_s0"   # seeds share one measurement
  assert len({base0["arch"], exp["arch"], v1["arch"]}) == 3
  for rec in (base0, exp, v1):
    assert set(rec["latency_by_threads"]) == {"1", "2"} and rec["threads"] == 1
    assert 0 < rec["latency_q1_ms"] <= rec["latency_ms"] <= rec["latency_q3_ms"]
    assert rec["latency_by_threads"]["1"]["median_ms"] == rec["latency_ms"]
    assert rec["peak_memory_bytes"] > 0 and rec["tflite_bytes"] > 10_000
    assert rec["repeats"] == 3 and rec["memory_batch"] == 1
  # The expansion shortcut keeps the wide tensors alive across blocks: more peak memory at
  # the same MAdds (paper §5 / Fig. 6b), as XLA counts it.
  assert exp["peak_memory_bytes"] > base0["peak_memory_bytes"]

  records = {r.name: r for r in collect.collect(sweep)}
  assert records["base_s1"].latency_ms == base0["latency_ms"]
  assert records["exp_s0"].peak_memory_bytes == exp["peak_memory_bytes"]
  assert records["base_s2"].latency_ms is None
  rows = {r["run"]: r for r in tables.run_rows(list(records.values()))}
  assert rows["v1_s0"]["peak_mem_mb"] == pytest.approx(v1["peak_memory_bytes"] / 1e6, abs=1e-4)
  aggregate = tables.aggregate_rows(list(records.values()))
  assert {r["variant"]: r["latency_ms"] for r in aggregate}["linear/bottleneck"] == \
      pytest.approx(base0["latency_ms"], abs=1e-4)
  paths = plots_cli.render_all(list(records.values()), str(tmp_path / "plots"))
  assert {"fig5_latency.png", "fig5_memory.png"} <= {os.path.basename(p) for p in paths}

  # A second pass skips runs with a current record; --force re-measures.
  mtime = os.path.getmtime(os.path.join(sweep, "base_s0", run_record.EFFICIENCY))
  assert measure_cli.main([sweep, *FAST]) == 0
  assert "every one of 4 runs has a current" in capsys.readouterr().err
  assert os.path.getmtime(os.path.join(sweep, "base_s0", run_record.EFFICIENCY)) == mtime


def test_a_record_of_another_architecture_is_ignored(tmp_path):
  workdir = testing.write_run(str(tmp_path / "s" / "r"), curve=[(10, 0.5)])
  testing.write_efficiency(workdir, latency_ms=1.0, peak_memory_bytes=1000)
  assert collect.read_run(workdir).latency_ms == 1.0
  path = os.path.join(workdir, run_record.CONFIG)
  with open(path) as f:
    config = json.load(f)
  config["model"]["shortcut"] = "none"       # the run was changed after it was measured
  with open(path, "w") as f:
    json.dump(config, f)
  assert run_record.read_efficiency(workdir, config) is None
  assert collect.read_run(workdir).latency_ms is None
  assert run_record.read_efficiency(workdir) is not None   # without a config: no check


def test_memory_follows_inference_split_and_is_measured_on_the_export_form():
  config = {"num_classes": 10, "input": {"resolution": 64},
            "model": {"name": "mobilenet_v2", "width_multiplier": 1.0, "inference_split": 4}}
  model = measure.model_of(config)
  assert model.inference_split == 4 and model.impl.depthwise == "xla"
  split = measure.peak_memory_bytes(model, 64)
  standard = measure.peak_memory_bytes(model.clone(inference_split=1), 64)
  assert standard > split, (standard, split)
  assert run_record.arch_fingerprint(config) != run_record.arch_fingerprint(
      {**config, "model": {**config["model"], "inference_split": 1}})
  # XLA's accounting of the same program, compiled directly.
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  m = models.MobileNetV2(num_classes=10, inference_split=4, impl=model.impl)
  v = jax.eval_shape(lambda: m.init(jax.random.key(0), jnp.zeros(x.shape), train=False))
  compiled = jax.jit(lambda v, x: m.apply(v, x, train=False)).lower(v, x).compile()
  assert split == compiled.memory_analysis().temp_size_in_bytes


def test_frontier_in_a_measured_cost(tmp_path):
  """Constructed costs: the latency frontier is not the MAdds one."""
  sweep = tmp_path / "s"
  for name, width, top1, ms in (("a", 0.35, 0.80, 1.0), ("b", 0.5, 0.70, 2.0),
                                ("c", 0.75, 0.85, 3.0)):
    w = testing.write_run(str(sweep / name), width=width, curve=[(10, top1)])
    testing.write_efficiency(w, latency_ms=ms, peak_memory_bytes=int(ms * 1e6))
  records = collect.collect(str(sweep))
  rows = {r["width"]: r for r in fig5.frontier_rows(records, cost="latency")}
  assert {w: r["on_frontier"] for w, r in rows.items()} == {0.35: True, 0.5: False, 0.75: True}
  assert rows[0.5]["latency_ms"] == 2.0 and rows[0.5]["mmadds"] > rows[0.35]["mmadds"]
  assert costs.measured_present(records) == ["latency", "memory"]
  assert [r["peak_mem_mb"] for r in fig5.frontier_rows(records, cost="memory")] == [1, 2, 3]
  with pytest.raises(ValueError, match="cost must be one of"):
    fig5.frontier_rows(records, cost="energy")


@pytest.mark.parametrize("argv,needle", [
    (["--threads=0"], "--threads must be integers >= 1"),
    (["--threads=x"], "--threads must be integers >= 1"),
    (["--repeats=0"], "--repeats must be an integer >= 1"),
    (["--memory_batch=0"], "--memory_batch must be an integer >= 1"),
])
def test_bad_flags_are_rejected_before_any_work(tmp_path, capsys, argv, needle):
  sweep = _sweep(tmp_path)
  assert measure_cli.main([sweep, *argv]) == 2
  assert needle in capsys.readouterr().err
  assert not any(os.path.exists(os.path.join(sweep, n, run_record.EFFICIENCY))
                 for n in os.listdir(sweep))


def test_bad_paths(tmp_path, capsys):
  assert measure_cli.main([str(tmp_path / "nope")]) == 2
  assert "does not exist; allowed: a sweep dir or a run workdir" in capsys.readouterr().err
  (tmp_path / "empty").mkdir()
  assert measure_cli.main([str(tmp_path / "empty")]) == 1
  assert "no finished runs" in capsys.readouterr().err
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / run_record.CONFIG).write_text(json.dumps({"model": {"name": "resnet"}}))
  assert measure_cli.main([str(bad)]) == 2
  assert "not a model config this package can build" in capsys.readouterr().err
