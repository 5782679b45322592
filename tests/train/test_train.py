"""End-to-end training on the embedded digits dataset (tiny), W&B offline read-back, faults."""

import json
import os

import jax
import numpy as np
import pytest

from mnv2_jax import checkpointing
from mnv2_jax import data
from mnv2_jax import logging as mlog
from mnv2_jax import parallel
from mnv2_jax import train
from tests.train.helpers import tiny_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, _isolated_wandb_env):
  """One tiny run, W&B offline, shared by the read-only tests below."""
  workdir = str(tmp_path_factory.mktemp("run"))
  config = tiny_config()
  config.wandb.mode = "offline"
  config.wandb.group = "pytest_group"
  config.wandb.tags = ("digits", "pytest")
  config.wandb.name = "tiny"
  summary = train.train_and_evaluate(config, workdir)
  return workdir, summary


def test_run_writes_files_and_summary(finished_run):
  workdir, summary = finished_run
  for name in ("config.json", "metrics.jsonl", "summary.json"):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, "summary.json")) as f:
    on_disk = json.load(f)
  assert on_disk["status"] == "finished" and on_disk["steps"] == 6
  assert on_disk["madds"] == summary["madds"] > 0 and on_disk["params"] > 0
  assert 0.0 <= on_disk["final/top1"] <= 1.0 and on_disk["final/top5"] >= on_disk["final/top1"]
  assert on_disk["shortcut"] == "bottleneck" and on_disk["resolution"] == 32
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  train_steps = [r["step"] for r in rows if "train/loss" in r]
  assert train_steps == [1, 2, 3, 4, 5, 6]
  assert all(np.isfinite(r["train/loss"]) for r in rows if "train/loss" in r)
  evals = [r for r in rows if "eval/top1" in r]
  assert [r["step"] for r in evals] == [6]
  assert evals[0]["eval/count"] == 360     # every test example counted exactly once
  assert evals[0]["eval/top1"] == pytest.approx(on_disk["final/top1"])
  with open(os.path.join(workdir, "config.json")) as f:
    cfg = json.load(f)
  assert cfg["model"]["width_multiplier"] == 0.35 and cfg["madds"] == on_disk["madds"]


def test_wandb_offline_run_records_config_history_and_summary(finished_run):
  workdir, summary = finished_run
  run = mlog.read_offline_run(workdir)
  assert run["group"] == "pytest_group" and run["job_type"] == "train"
  assert set(run["tags"]) == {"digits", "pytest"}
  assert run["config"]["madds"] == summary["madds"]
  assert run["config"]["params"] == summary["params"]
  assert run["config"]["model"]["shortcut"] == "bottleneck"
  history = [h for h in run["history"] if "eval/top1" in h]
  assert len(history) == 1 and history[0]["eval/top1"] == pytest.approx(summary["final/top1"])
  assert [h["_step"] for h in run["history"] if "train/loss" in h] == [1, 2, 3, 4, 5, 6]
  assert run["summary"]["madds"] == summary["madds"]
  assert run["summary"]["final/top1"] == pytest.approx(summary["final/top1"])


def _snapshot(workdir):
  out = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = f.read()
  return out


@pytest.mark.parametrize("field, value, message", [
    ("model.shortcut", "between", "shortcut must be one of"),
    ("model.width_multiplier", -1.0, "width_multiplier"),
    ("model.name", "resnet", "model.name must be one of"),
    ("optim.name", "lamb", "optim.name must be one of"),
    ("input.augment", "mixup", "augment"),
    ("wandb.mode", "cloud", "wandb.mode must be one of"),
    ("train.num_epochs", 0.0, "train.num_epochs"),
])
def test_bad_values_fail_before_touching_an_existing_workdir(finished_run, field, value,
                                                             message):
  workdir, _ = finished_run
  before = _snapshot(workdir)
  config = tiny_config(num_steps=-1)
  section, key = field.split(".")
  config[section][key] = value
  with pytest.raises(ValueError, match=message):
    train.train_and_evaluate(config, workdir)
  assert _snapshot(workdir) == before


def test_changed_identity_refuses_to_resume(finished_run):
  workdir, _ = finished_run
  before = _snapshot(workdir)
  config = tiny_config()
  config.model.shortcut = "none"
  with pytest.raises(ValueError, match="different config.*model.shortcut"):
    train.train_and_evaluate(config, workdir)
  assert _snapshot(workdir) == before


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(ValueError, match="is not writable"):
    train.train_and_evaluate(tiny_config(), str(blocker / "run"))


def test_dataset_not_prepared_says_how(tmp_path):
  config = tiny_config()
  config.input.dataset = "imagenet2012"
  config.input.data_dir = str(tmp_path / "tfds")
  with pytest.raises(data.DatasetNotPreparedError, match="ILSVRC2012_img_train.tar"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_batch_not_divisible_by_devices(tmp_path, monkeypatch):
  monkeypatch.setattr(parallel.jax, "device_count", lambda: 3)
  with pytest.raises(ValueError, match="input.global_batch_size=16 must be a positive multiple"):
    train.train_and_evaluate(tiny_config(), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()      # nothing written before the error


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  # Warm-up from 0 over the whole run: the first update has learning rate 0, so the losses of
  # steps 1 and 2 are both losses of the initial weights (finite), and steps 1 and 2 are
  # checkpointed whatever the numerics. The learning rate then climbs to 6e10 (base 1e12 at
  # batch 16 / 256) and the loss diverges (measured: NaN at step 3, after an update at 8e9).
  config = tiny_config(num_steps=8, checkpoint_every_steps=1, eval_every_steps=8)
  config.optim.base_lr = 1e12
  steps_per_epoch = data.dataset_info(config.input).num_train // config.input.global_batch_size
  config.optim.warmup_epochs = 8 / steps_per_epoch
  workdir = str(tmp_path / "run")
  with pytest.raises(FloatingPointError, match="non-finite training loss.*at step (\\d+)") as e:
    train.train_and_evaluate(config, workdir)
  bad_step = int(e.value.args[0].split("at step ")[1].split(";")[0])
  assert 3 <= bad_step <= 8
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["status"] == "failed"
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  assert [r["train/lr"] for r in rows if r["step"] == 1 and "train/lr" in r] == [0.0]
  ckpt = checkpointing.Checkpointer(workdir, keep=3, every_steps=1)
  # Every step before the divergence was checkpointed (the last 3 kept), none after.
  assert sorted(ckpt.manager.all_steps()) == list(range(max(1, bad_step - 3), bad_step))
  state, _ = ckpt.restore(None)
  ckpt.close()
  assert int(state["step"]) == bad_step - 1
  floats = [x for x in jax.tree.leaves(state) if np.asarray(x).dtype.kind == "f"]
  assert floats and all(np.all(np.isfinite(x)) for x in floats)   # params, stats, optimizer


def test_eval_cli_reproduces_final_evaluation(finished_run, capsys):
  from mnv2_jax import evaluate_cli
  workdir, summary = finished_run
  assert evaluate_cli.main(["--workdir", workdir]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["step"] == 6 and result["eval/count"] == 360
  assert result["eval/top1"] == summary["final/top1"]
  assert result["eval/loss"] == pytest.approx(summary["final/loss"], rel=1e-6)


def test_eval_cli_inference_split_gives_the_same_evaluation(finished_run, capsys):
  """A checkpoint trained without the split, evaluated with it (paper §5.1): same weights,
  the same predictions up to float round-off."""
  from mnv2_jax import evaluate_cli
  workdir, summary = finished_run
  assert evaluate_cli.main(["--workdir", workdir, "--inference_split=4"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["eval/count"] == 360
  assert abs(result["eval/top1"] - summary["final/top1"]) <= 1 / 360 + 1e-9
  assert result["eval/loss"] == pytest.approx(summary["final/loss"], rel=1e-4)


def test_eval_cli_keras_weights_path(capsys):
  import keras  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
  # keras is a pinned dependency (pyproject.toml): without it this test errors, never skips.
  from mnv2_jax import evaluate_cli
  assert evaluate_cli.main(["--keras_weights=none", "--width=0.35", "--resolution=32",
                            "--dataset=synthetic", "--batch_size=64"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["eval/count"] == 1024 and 0.0 <= result["eval/top1"] <= 1.0


def test_non_finite_state_is_never_checkpointed(tmp_path):
  """The loss of step s is computed before update s, so the trainer also checks the state.

  lr 1e30 times an L2 term of 1e30 * w overflows every decayed weight to inf in update 1,
  while the step-1 loss (of the initial weights) is finite.
  """
  config = tiny_config(num_steps=4, checkpoint_every_steps=1, eval_every_steps=4)
  config.optim.base_lr, config.optim.weight_decay = 1e30, 1e30
  workdir = str(tmp_path / "run")
  with pytest.raises(FloatingPointError, match="non-finite values in the training state after "
                     "step 1 .*No checkpoint was saved"):
    train.train_and_evaluate(config, workdir)
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  assert [r["step"] for r in rows if "train/loss" in r] == [1]
  assert np.isfinite(rows[0]["train/loss"])
  ckpt = checkpointing.Checkpointer(workdir, keep=3, every_steps=1)
  assert ckpt.manager.all_steps() == []
  ckpt.close()
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["status"] == "failed"
