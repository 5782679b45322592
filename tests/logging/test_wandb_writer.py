"""WandbWriter logic against a fake run: failures are contained, steps and values filtered.

The real client is exercised in test_wandb_offline.py; here ``wandb.init`` is replaced so the
tests are fast and can make wandb fail on purpose.
"""

from __future__ import annotations

import os

import pytest
import wandb

from mnv2_jax.logging import wandb_writer


class _FakeConfig(dict):

  def update(self, values, allow_val_change=False):  # pylint: disable=arguments-differ
    del allow_val_change
    super().update(values)


class _FakeRun:

  def __init__(self, root, fail_on=(), starting_step=0):
    self.id = "fake123"
    self.dir = os.path.join(root, "wandb", "offline-run-x-fake123", "files")
    self.starting_step = starting_step
    self.config = _FakeConfig()
    self.summary = {}
    self.logged = []
    self.metrics = {}
    self.finished = 0
    self.fail_on = set(fail_on)

  def define_metric(self, name, summary=None):
    self.metrics[name] = summary

  def log(self, data, step=None):
    if "log" in self.fail_on:
      raise ConnectionError("wandb-core went away")
    self.logged.append((step, dict(data)))

  def finish(self):
    if "finish" in self.fail_on:
      raise RuntimeError("finish failed")
    self.finished += 1


@pytest.fixture
def fake_init(monkeypatch, tmp_path):
  """Replaces wandb.init; returns (calls, options): the (kwargs, run) pairs and _FakeRun kwargs."""
  calls, options = [], {}

  def init(**kwargs):
    run = _FakeRun(str(tmp_path), **options)
    calls.append((kwargs, run))
    return run
  monkeypatch.setattr(wandb, "init", init)
  return calls, options


def test_init_arguments_and_metric_definitions(fake_init, tmp_path):
  calls, _ = fake_init
  w = wandb_writer.WandbWriter(
      str(tmp_path), mode="offline", group="sweep1", job_type="train",
      tags=("width_0.5", "t" * 80, "width_0.5", ""), name="r", run_id="abc", resume=True,
      config={"madds": 300, "params": 3})
  (kwargs, run), = calls
  assert kwargs["mode"] == "offline" and kwargs["dir"] == str(tmp_path)
  assert kwargs["id"] == "abc" and kwargs["resume"] == "allow"
  assert kwargs["group"] == "sweep1" and kwargs["job_type"] == "train"
  assert kwargs["tags"] == ["width_0.5", "t" * 64]
  assert kwargs["config"] == {"madds": 300, "params": 3}
  assert kwargs["reinit"] == "create_new"
  settings = kwargs["settings"]
  assert settings.console == "off" and settings.x_disable_stats
  assert run.metrics == {"eval/top1": "max,last", "eval/top5": "max,last",
                         "eval/loss": "min,last"}
  assert w.run_id == "fake123" and w.mode == "offline" and w.active
  assert w.run_dir == os.path.join(str(tmp_path), "wandb", "offline-run-x-fake123")
  w.close()
  w.close()
  assert run.finished == 1


def test_scalars_are_floats_and_bad_steps_and_values_are_skipped(fake_init, tmp_path):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  calls, options = fake_init
  options["starting_step"] = 10  # As after an online resume: W&B is at step 10.
  w = wandb_writer.WandbWriter(str(tmp_path), mode="offline")
  run = calls[0][1]
  w.write_scalars(5, {"train/loss": 1.0})  # Below the run's step: W&B would drop it.
  w.write_scalars(10, {"train/loss": jnp.asarray(2.0, jnp.bfloat16), "eval/top1": float("nan"),
                       "bad": [1, 2]})
  w.write_scalars(20, {"eval/top1": 0.5})
  w.write_scalars(15, {"eval/top1": 0.6})  # Out of order: skipped.
  assert run.logged == [(10, {"train/loss": 2.0}), (20, {"eval/top1": 0.5})]
  assert type(run.logged[0][1]["train/loss"]) is float  # pylint: disable=unidiomatic-typecheck
  w.write_config({"madds": 1})
  w.write_summary({"top1": 0.5, "params": 2})
  assert run.config == {"madds": 1} and run.summary == {"top1": 0.5, "params": 2}
  w.close()


def test_failing_init_does_not_raise_and_writer_is_noop(monkeypatch, tmp_path, caplog):
  def broken_init(**kwargs):
    del kwargs
    raise RuntimeError("no wandb today")
  monkeypatch.setattr(wandb, "init", broken_init)
  w = wandb_writer.WandbWriter(str(tmp_path), mode="offline", config={"a": 1})
  assert w.failed and not w.active and w.run_id is None and w.mode == "disabled"
  w.write_config({"b": 1})
  w.write_scalars(1, {"train/loss": 1.0})
  w.write_summary({"top1": 0.1})
  w.log_table("t", ["a"], [[1]])
  w.close()
  errors = [r for r in caplog.records if "no wandb today" in r.getMessage()]
  assert len(errors) == 1


def test_failed_online_start_retries_offline(monkeypatch, tmp_path):
  modes = []
  def init(**kwargs):
    modes.append(kwargs["mode"])
    if kwargs["mode"] == "online":
      raise TimeoutError("init timed out")
    return _FakeRun(str(tmp_path))
  monkeypatch.setattr(wandb, "init", init)
  monkeypatch.setattr(wandb_writer.wandb_mode, "resolve_mode",
                      lambda mode: ("online", "pretend"))
  w = wandb_writer.WandbWriter(str(tmp_path), mode="online")
  assert modes == ["online", "offline"]
  assert w.mode == "offline" and w.active and not w.failed
  w.close()


def test_failure_mid_run_is_logged_once_and_stops_logging(fake_init, tmp_path, caplog):
  calls, options = fake_init
  options["fail_on"] = ("log", "finish")
  w = wandb_writer.WandbWriter(str(tmp_path), mode="offline")
  for step in range(3):
    w.write_scalars(step, {"train/loss": 1.0})  # Must not raise.
  w.write_summary({"top1": 0.3})
  w.close()
  assert w.failed and not w.active and w.mode == "disabled"
  assert w.run_id == "fake123"  # Still known, e.g. for the checkpoint.
  assert calls[0][1].summary == {}
  assert len([r for r in caplog.records if "wandb-core went away" in r.getMessage()]) == 1


def test_disabled_mode_never_calls_wandb(monkeypatch, tmp_path):
  monkeypatch.setattr(wandb, "init", lambda **kw: pytest.fail("wandb.init called"))
  workdir = tmp_path / "run"
  w = wandb_writer.WandbWriter(str(workdir), mode="disabled", config={"a": 1})
  w.write_scalars(1, {"train/loss": 1.0})
  w.write_summary({"top1": 0.1})
  w.log_plot("p", "line", ["x", "y"], [[1, 2]], x="x", y="y")
  w.close()
  assert w.mode == "disabled" and w.run_id is None and not w.failed
  assert not workdir.exists()


def test_unknown_plot_kind_raises_even_when_disabled(tmp_path):
  w = wandb_writer.WandbWriter(str(tmp_path), mode="disabled")
  with pytest.raises(ValueError, match="scatter"):
    w.log_plot("p", "histogram", ["x"], [[1]], x="x", y="x")


def test_invalid_mode_raises(tmp_path):
  with pytest.raises(ValueError, match="wandb.mode"):
    wandb_writer.WandbWriter(str(tmp_path), mode="on")
