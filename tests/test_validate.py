"""Bad input is rejected before anything is written, with a message naming the field and the
allowed values: the trainer (`train.train_and_evaluate`, `python -m mnv2_jax.main`) and the
evaluation CLI (`evaluate_cli.main`). The sweep launcher's cases are in
tests/sweeps/test_sweep_bad_input.py.

Every in-process case must fail in validation, before any jit: a case that reached training
would compile and take tens of seconds, and would leave the workdir behind (asserted absent).
"""

import json
import math
import os
import subprocess
import sys

import pytest

from mnv2_jax import evaluate_cli
from mnv2_jax import optim
from mnv2_jax import train
from mnv2_jax import validate
from tests.train.helpers import env
from tests.train.helpers import ROOT
from tests.train.helpers import tiny_config

NAN, INF = math.nan, math.inf
WANDB = "('auto', 'online', 'offline', 'disabled')"

# (case id, {dotted field: value}, texts the error message must contain). tiny_config runs 6
# steps of batch 16 on sklearn_digits (89 steps per epoch) with the SGD + cosine recipe.
TRAINER_CASES = [
    ("lr_nan", {"optim.base_lr": NAN}, ["optim.base_lr", "(0, inf)", "nan"]),
    ("lr_inf", {"optim.base_lr": INF}, ["optim.base_lr", "(0, inf)"]),
    ("lr_negative", {"optim.base_lr": -0.1}, ["optim.base_lr", "(0, inf)"]),
    ("lr_zero", {"optim.base_lr": 0.0}, ["optim.base_lr", "(0, inf)"]),
    ("lr_none", {"optim.base_lr": None}, ["optim.base_lr", "finite number"]),
    ("warmup_longer_than_run", {"optim.warmup_epochs": 1.0},
     ["optim.warmup_epochs", "89 warm-up steps", "total_steps=6", "[0, 0.0674157]"]),
    ("warmup_negative", {"optim.warmup_epochs": -1.0}, ["optim.warmup_epochs", "[0, inf)"]),
    ("decay_shorter_than_a_step", {"optim.schedule": "exponential", "optim.decay_epochs": 0.001},
     ["optim.decay_epochs", "decay_steps=0", ">= 0.011236"]),
    ("decay_rate_zero", {"optim.schedule": "exponential", "optim.decay_rate": 0.0},
     ["optim.decay_rate", "(0, 1]"]),
    ("weight_decay_nan", {"optim.weight_decay": NAN}, ["optim.weight_decay", "[0, inf)"]),
    ("weight_decay_negative", {"optim.weight_decay": -1e-4},
     ["optim.weight_decay", "[0, inf)"]),
    ("label_smoothing_one", {"optim.label_smoothing": 1.0}, ["optim.label_smoothing", "[0, 1)"]),
    ("ema_decay_one", {"optim.ema_decay": 1.0}, ["optim.ema_decay", "[0, 1)"]),
    ("momentum_above_one", {"optim.momentum": 1.5}, ["optim.momentum", "[0, 1)"]),
    ("rmsprop_eps_zero", {"optim.name": "rmsprop_tf", "optim.rmsprop_eps": 0.0},
     ["optim.rmsprop_eps", "(0, inf)"]),
    ("grad_clip_negative", {"optim.grad_clip_norm": -1.0}, ["optim.grad_clip_norm", "[0, inf)"]),
    ("base_batch_zero", {"optim.base_batch_size": 0}, ["optim.base_batch_size", ">= 1"]),
    ("optimizer_name", {"optim.name": "lamb"}, ["optim.name", "'rmsprop_tf', 'sgd', 'adamw'"]),
    ("schedule_name", {"optim.schedule": "linear"},
     ["optim.schedule", "'exponential', 'cosine', 'constant'"]),
    ("shortcut", {"model.shortcut": "between"},
     ["model.shortcut", "'bottleneck', 'expansion', 'none'"]),
    ("activation", {"model.bottleneck_activation": "relu"},
     ["model.bottleneck_activation", "'linear', 'relu6'"]),
    ("width_zero", {"model.width_multiplier": 0.0}, ["model.width_multiplier", "positive"]),
    ("width_negative", {"model.width_multiplier": -1.0}, ["model.width_multiplier", "positive"]),
    ("model_name", {"model.name": "resnet"}, ["model.name", "'mobilenet_v2', 'mobilenet_v1'"]),
    ("dropout_one", {"model.dropout_rate": 1.0}, ["model.dropout_rate", "[0, 1)"]),
    ("inference_split_not_dividing", {"model.inference_split": 3},
     ["model.inference_split=3 must divide", "allowed values: (1, 2, 4, 8, 16)"]),
    ("inference_split_in_training", {"model.inference_split": 2},
     ["model.inference_split=2 is an inference schedule", "train with 1"]),
    ("dtype", {"model.dtype": "float8"}, ["model.dtype", "'float32', 'bfloat16'"]),
    ("resolution_below_32", {"input.resolution": 16}, ["input.resolution", ">= 32"]),
    ("augment", {"input.augment": "mixup"}, ["input.augment", "'pad_crop'"]),
    ("unknown_dataset", {"input.dataset": "cifar1000"},
     ["input.dataset='cifar1000'", "not a registered TFDS dataset", "'sklearn_digits'",
      "cifar100"]),
    ("batch_zero", {"input.global_batch_size": 0}, ["input.global_batch_size", ">= 1"]),
    ("eval_batch_zero", {"input.eval_batch_size": 0}, ["input.eval_batch_size", ">= 1"]),
    ("wandb_mode", {"wandb.mode": "cloud"}, ["wandb.mode", WANDB]),
    ("epochs_negative", {"train.num_steps": -1, "train.num_epochs": -1.0},
     ["train.num_epochs", "> 0"]),
    ("epochs_nan", {"train.num_steps": -1, "train.num_epochs": NAN}, ["train.num_epochs", "> 0"]),
    ("eval_every_epochs_zero", {"train.eval_every_steps": -1, "train.eval_every_epochs": 0.0},
     ["train.eval_every_epochs", "> 0"]),
    ("log_every_zero", {"train.log_every_steps": 0}, ["train.log_every_steps", ">= 1"]),
    ("keep_checkpoints_zero", {"train.keep_checkpoints": 0}, ["train.keep_checkpoints", ">= 1"]),
    ("bn_recalibration_negative", {"train.bn_recalibration_batches": -1},
     ["train.bn_recalibration_batches", ">= 0"]),
    ("seed_none", {"seed": None}, ["seed must be an integer"]),
    ("seed_beyond_int32", {"seed": 2**31}, ["seed must be an integer in [-2**31, 2**31)"]),
]


def _set(config, key: str, value) -> None:
  *sections, field = key.split(".")
  node = config
  for section in sections:
    node = node[section]
  node[field] = value


@pytest.mark.parametrize("overrides, expected", [c[1:] for c in TRAINER_CASES],
                         ids=[c[0] for c in TRAINER_CASES])
def test_trainer_rejects_bad_values_before_writing(tmp_path, overrides, expected):
  config = tiny_config()
  for key, value in overrides.items():
    _set(config, key, value)
  workdir = tmp_path / "run"
  with pytest.raises(ValueError) as e:
    train.train_and_evaluate(config, str(workdir))
  for text in expected:
    assert text in str(e.value)
  assert not workdir.exists()


def test_run_length_is_computed_from_the_dataset():
  config = tiny_config(num_steps=-1, eval_every_steps=-1)
  config.train.num_epochs, config.train.eval_every_epochs = 2.5, 0.5
  config.optim.warmup_epochs = 0.25
  config.optim.update(dict(schedule="exponential", decay_epochs=0.5))
  length = validate.check_config(config).length
  # 1,437 training images // 16 = 89 steps per epoch.
  assert length == validate.RunLength(steps_per_epoch=89, total_steps=223, eval_every=44,
                                      warmup_steps=22, decay_steps=44)


def test_optimizer_uses_the_same_checks():
  config = tiny_config()
  config.optim.base_lr = NAN
  with pytest.raises(ValueError, match=r"optim\.base_lr must be a finite number in \(0, inf\)"):
    optim.make_optimizer(config.optim, steps_per_epoch=89, global_batch_size=16, total_steps=6)
  config.optim.base_lr, config.optim.warmup_epochs = 0.1, 1.0
  with pytest.raises(ValueError, match=r"optim\.warmup_epochs=1\.0 gives 89 warm-up steps"):
    optim.make_optimizer(config.optim, steps_per_epoch=89, global_batch_size=16, total_steps=6)


def test_unknown_optim_field_is_named():
  config = tiny_config()
  with config.optim.unlocked():
    config.optim.base_lrr = 0.1
  with pytest.raises(ValueError, match=r"unknown fields \['base_lrr'\] and lacks \[\]"):
    optim.check_fields(config.optim)


@pytest.mark.parametrize("latest, expected", [
    (None, "No checkpoint was saved before it (train.checkpoint_every_steps=200), so there is "
           "nothing to resume from in /w/checkpoints."),
    (4, "The last good checkpoint (step 4) in /w/checkpoints is kept."),
])
def test_nonfinite_loss_message(latest, expected):
  message = train.nonfinite_loss_message(NAN, 7, latest, "/w/checkpoints", 200)
  assert message == f"non-finite training loss (nan) at step 7; stopped. {expected}"
  assert "step None" not in message


# ------------------------------------------------------------------------ mnv2-eval


@pytest.fixture
def run_dir(tmp_path):
  """A workdir holding a (valid) run's config.json, as mnv2-train writes it; no checkpoint."""
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "config.json").write_text(tiny_config().to_json_best_effort())
  return workdir


@pytest.mark.parametrize("flags, expected", [
    (["--workdir={tmp}/missing"], ["--workdir=", "has no config.json"]),
    (["--workdir={run}", "--batch_size=0"], ["--batch_size", ">= 1", "got 0"]),
    (["--workdir={run}", "--step=-3"], ["--step", ">= 0"]),
    (["--keras_weights=none", "--width=0"], ["--width", "> 0"]),
    (["--keras_weights=none", "--resolution=16"], ["--resolution", ">= 32"]),
    (["--workdir={run}", "--inference_split=3"],
     ["--inference_split: inference_split=3 must divide", "allowed values: (1, 2, 4, 8, 16)"]),
], ids=["no_config_json", "batch_zero", "step_negative", "width_zero", "resolution_16",
        "inference_split_3"])
def test_eval_cli_rejects_bad_flags(tmp_path, run_dir, flags, expected):
  argv = [f.format(tmp=tmp_path, run=run_dir) for f in flags]
  with pytest.raises(ValueError) as e:
    evaluate_cli.main(argv)
  for text in expected:
    assert text in str(e.value)
  assert sorted(os.listdir(run_dir)) == ["config.json"]
  assert not (tmp_path / "missing").exists()


def test_eval_cli_builds_the_optimizer_with_the_run_length(run_dir):
  """A decay period of 0.5 epochs is one step at 1 step per epoch: the old stand-in numbers
  (1 step per epoch) rejected a valid run; the run's own length (89 steps per epoch) does not."""
  config = tiny_config()
  config.optim.update(dict(schedule="exponential", decay_epochs=0.5))
  (run_dir / "config.json").write_text(config.to_json_best_effort())
  with pytest.raises(ValueError, match="has no checkpoint"):  # got past the optimizer
    evaluate_cli.main([f"--workdir={run_dir}"])


# ------------------------------------------------------------------------ mnv2-train CLI


def test_cli_rejects_bad_values_before_writing(tmp_path):
  """`python -m mnv2_jax.main` (config_flags parsing included), four cases at once."""
  cases = {  # name: (extra flags, env, texts stderr must contain)
      "nan_lr": (["--config.optim.base_lr=nan"], {}, ["optim.base_lr", "(0, inf)"]),
      "wrong_type": (["--config.train.num_steps=2.5"], {},
                     ["config.train.num_steps=2.5", "invalid literal for int()"]),
      "batch_vs_devices": (["--config.input.global_batch_size=6"],
                           {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
                           ["input.global_batch_size=6", "multiple of the device count (4 "]),
      "eval_batch_vs_devices": (["--config.input.eval_batch_size=130"],
                                {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"},
                                ["input.eval_batch_size=130", "multiple of the device count"]),
  }
  procs = {}
  for name, (extra, environ, _) in cases.items():
    argv = [sys.executable, "-m", "mnv2_jax.main", f"--workdir={tmp_path / name}",
            "--config=configs/digits.py:batch=16", "--config.train.num_steps=6",
            "--config.wandb.mode=disabled", "--config.optim.warmup_epochs=0", *extra]
    procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env(**environ), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  for name, proc in procs.items():
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, (name, out[-2000:])
    for text in cases[name][2]:
      assert text in out, (name, text, out[-2000:])
    assert not (tmp_path / name).exists(), name
