"""Shared pieces of the trainer tests: tiny configs (digits SGD, the paper recipe), a launcher."""

import os
import subprocess
import sys

from configs import common
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


def paper_optim() -> dict:
  """`config.optim` of the paper recipe (`configs/common.py`), sized for runs of ~100 steps.

  Kept from the paper: TF RMSProp (rho 0.9, eps 1.0, momentum 0.9), lr 0.045 per 96 images,
  exponential staircase decay by 0.98, L2 4e-5, label smoothing 0.1, EMA of weights and BN
  statistics. Changed, and why:
  - `decay_epochs` 2.5 -> 0.25 (22 steps at batch 16, 11 at batch 32): the staircase steps
    several times inside a short run instead of never;
  - `ema_decay` 0.9999 -> 0.99. Under TF's `num_updates` warm-up the effective decay is
    min(d, (1 + t) / (10 + t)), which is <= 0.92 for t < 100, so in a run of <= 100 steps any
    d >= 0.92 gives the same (moving) EMA; 0.99 is a nominal decay a short run reaches (from
    step ~890), where 0.9999 would only take over after ~90,000 steps.
  """
  return dict(common.optim_config(decay_epochs=0.25, ema_decay=0.99))


def paper_config(batch: int = 16, **train):
  """`tiny_config` with the paper recipe (`paper_optim`) and global batch `batch`."""
  config = tiny_config(**train)
  config.input.global_batch_size = batch
  config.optim = common.optim_config(**paper_optim())
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


def paper_flags(workdir, *extra):
  """`tiny_flags` plus `--config.optim.*` for every field of `paper_optim()`."""
  return tiny_flags(workdir, *(f"--config.optim.{k}={v}" for k, v in paper_optim().items()),
                    *extra)


def final_state(workdir, step):
  """The latest checkpoint in `workdir`, which must be of `step`, as host arrays (a dict of
  the TrainState fields; restored without a target, as saved)."""
  import jax  # pylint: disable=g-import-not-at-top
  from mnv2_jax import checkpointing  # pylint: disable=g-import-not-at-top
  ckpt = checkpointing.Checkpointer(workdir, keep=1000, every_steps=1)  # reads, deletes none
  assert ckpt.latest_step() == step, (ckpt.latest_step(), step)
  state, _ = ckpt.restore(None)
  ckpt.close()
  return jax.device_get(state)

