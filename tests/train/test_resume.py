"""Preemption and crash recovery: SIGTERM saves and exits; SIGKILL at any point loses nothing.

One reference run goes uninterrupted. A second run of the same config is stopped with SIGTERM
(expected: checkpoint, status "preempted", exit 143), resumed, killed with SIGKILL at an
arbitrary later step (possibly during an asynchronous checkpoint write), and resumed to the
end. Final parameters, optimizer state and batch statistics must be bit-identical to the
reference, and so must every logged training loss and the final evaluation.
"""

import json
import os
import signal
import time

import jax
import numpy as np

from mnv2_jax import checkpointing
from mnv2_jax import logging as mlog
from tests.train import helpers

STEPS = 60
FLAGS = (f"--config.train.num_steps={STEPS}", "--config.train.checkpoint_every_steps=7",
         f"--config.train.eval_every_steps={STEPS}")


def _wait_for_step(workdir, step, proc, timeout=600):
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + timeout
  while time.time() < deadline:
    assert proc.poll() is None, "run ended before it could be interrupted"
    if os.path.exists(path):
      rows = mlog.read_metrics(path)
      if rows and rows[-1]["step"] >= step:
        return rows[-1]["step"]
    time.sleep(0.005)
  raise TimeoutError(f"step {step} not reached")


def _final_state(workdir):
  ckpt = checkpointing.Checkpointer(workdir, keep=3, every_steps=7)
  assert ckpt.latest_step() == STEPS
  state, _ = ckpt.restore(None)
  ckpt.close()
  return jax.device_get(state)


def _logged(workdir):
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  keys = ("train/loss", "train/top1", "train/lr", "eval/top1", "eval/top5", "eval/loss")
  return [(r["step"], {k: r[k] for k in keys if k in r}) for r in rows]


def test_sigterm_and_sigkill_resume_bit_exact(tmp_path):
  env = helpers.env()
  ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
  proc = helpers.start(helpers.tiny_flags(ref, *FLAGS), tmp_path / "ref.log", env)
  assert proc.wait(900) == 0, (tmp_path / "ref.log").read_text()[-3000:]

  proc = helpers.start(helpers.tiny_flags(run, *FLAGS), tmp_path / "a.log", env)
  _wait_for_step(run, 10, proc)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(300) == 143, (tmp_path / "a.log").read_text()[-3000:]
  with open(os.path.join(run, "summary.json")) as f:
    assert json.load(f)["status"] == "preempted"
  preempted_at = checkpointing.Checkpointer(run, keep=3, every_steps=7).latest_step()
  assert 10 <= preempted_at < STEPS

  proc = helpers.start(helpers.tiny_flags(run, *FLAGS), tmp_path / "b.log", env)
  killed_at = _wait_for_step(run, preempted_at + 12, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait(60)
  assert killed_at < STEPS

  proc = helpers.start(helpers.tiny_flags(run, *FLAGS), tmp_path / "c.log", env)
  assert proc.wait(900) == 0, (tmp_path / "c.log").read_text()[-3000:]

  got, want = _final_state(run), _final_state(ref)
  for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  assert _logged(run) == _logged(ref)
  with open(os.path.join(run, "summary.json")) as f, open(os.path.join(ref, "summary.json")) as g:
    s_run, s_ref = json.load(f), json.load(g)
  assert s_run["status"] == "finished"
  assert s_run["final/top1"] == s_ref["final/top1"]
