"""Shared pieces of the trainer tests: a tiny config and a subprocess launcher."""

import os
import subprocess
import sys

from configs import digits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config(**train):
  """Digits at width 0.35 / 32 px, batch 16, a handful of steps, W&B off."""
  config = digits.get_config("batch=16")
  config.train.update({**dict(num_steps=6, log_every_steps=1, checkpoint_every_steps=3,
                              eval_every_steps=6), **train})
  config.input.eval_batch_size = 128
  config.optim.warmup_epochs = 0.0
  config.wandb.mode = "disabled"
  return config


def tiny_flags(workdir, *extra):
  return [f"--workdir={workdir}", "--config=configs/digits.py:batch=16",
          "--config.train.num_steps=12", "--config.train.log_every_steps=1",
          "--config.train.checkpoint_every_steps=3", "--config.train.eval_every_steps=12",
          "--config.input.eval_batch_size=128", "--config.wandb.mode=disabled",
          "--config.optim.warmup_epochs=0", *extra]


def env(**extra):
  e = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  e.update(extra)
  return e


def start(args, log_path, environ):
  log = open(log_path, "w")
  return subprocess.Popen([sys.executable, "-m", "mnv2_jax.main", *args], cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT, env=environ)
