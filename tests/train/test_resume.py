"""Preemption and crash recovery: SIGTERM saves and exits; SIGKILL at any point loses nothing.

The runs use the paper recipe (`helpers.paper_flags`: TF RMSProp with momentum, staircase
decay every 22 steps, label smoothing, EMA of weights and BN statistics), so the state that
must survive holds every kind of slot: RMSProp `nu`, the momentum trace, EMA params and EMA
batch stats. One reference run goes uninterrupted. A second run of the same config is stopped
with SIGTERM (expected: checkpoint, status "preempted", exit 143), resumed, killed with SIGKILL
at an arbitrary later step (possibly during an asynchronous checkpoint write), and resumed to
the end. The final state (params, batch stats, optimizer state, EMA params and batch stats,
step, rng) must be bit-identical to the reference, and so must every logged training loss and
the final evaluation (of the EMA weights).

Seen to fail with planted resume bugs: EMA reset to the raw weights on restore (mismatch in
`ema_batch_stats`, relative size 1e-6 to 1e-5 only: the warm-up decay (1 + t) / (10 + t) ~ 0.85
forgets the reset within a few dozen steps, so only a bit-exact check sees it), and the
optimizer state re-initialised on restore (batch stats and everything after differ).
"""

import json
import os
import signal
import time

import jax
import numpy as np
import pytest

from mnv2_jax import checkpointing
from mnv2_jax import logging as mlog
from tests.train import helpers

STEPS = 48  # staircase decays at steps 22 and 44; 60 steps of SGD cost the same CPU time
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


def _slots(tree, name):
  """Leaves of `tree` under a dict key `name` (e.g. RMSProp's 'nu'), by key path."""
  return [leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
          if any(getattr(k, "key", None) == name for k in path)]


def _check_holds_ema_and_rmsprop(state):
  """The state is the paper recipe's after training: EMA and RMSProp slots present and moved.

  Without this, a recipe change that dropped the EMA or the momentum (None or empty slots)
  would leave nothing to compare and the bit-exactness check would pass vacuously.
  """
  for raw, ema in (("params", "ema_params"), ("batch_stats", "ema_batch_stats")):
    assert state[ema] is not None, ema
    pairs = zip(jax.tree.leaves(state[raw]), jax.tree.leaves(state[ema]), strict=True)
    assert any(not np.array_equal(a, b) for a, b in pairs), f"{ema} equals {raw}"
  n_params = len(jax.tree.leaves(state["params"]))
  nu, trace = _slots(state["opt_state"], "nu"), _slots(state["opt_state"], "trace")
  assert len(nu) == len(trace) == n_params, (len(nu), len(trace), n_params)
  assert any(not np.all(v == 1.0) for v in nu), "RMSProp nu still at its initial ones"
  assert any(np.any(t != 0) for t in trace), "momentum trace still zero"


def _logged(workdir):
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  keys = ("train/loss", "train/top1", "train/lr", "eval/top1", "eval/top5", "eval/loss")
  return [(r["step"], {k: r[k] for k in keys if k in r}) for r in rows]


@pytest.mark.slow(seconds=255)
def test_sigterm_and_sigkill_resume_bit_exact(tmp_path):
  env = helpers.env()
  ref, run = str(tmp_path / "ref"), str(tmp_path / "run")
  proc = helpers.start(helpers.paper_flags(ref, *FLAGS), tmp_path / "ref.log", env)
  assert proc.wait(900) == 0, (tmp_path / "ref.log").read_text()[-3000:]
  with open(os.path.join(ref, "config.json")) as f:
    assert json.load(f)["optim"] == helpers.paper_optim()   # the flags took effect

  proc = helpers.start(helpers.paper_flags(run, *FLAGS), tmp_path / "a.log", env)
  _wait_for_step(run, 10, proc)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(300) == 143, (tmp_path / "a.log").read_text()[-3000:]
  with open(os.path.join(run, "summary.json")) as f:
    assert json.load(f)["status"] == "preempted"
  preempted_at = checkpointing.Checkpointer(run, keep=3, every_steps=7).latest_step()
  assert 10 <= preempted_at < STEPS

  proc = helpers.start(helpers.paper_flags(run, *FLAGS), tmp_path / "b.log", env)
  killed_at = _wait_for_step(run, preempted_at + 12, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait(60)
  assert killed_at < STEPS

  proc = helpers.start(helpers.paper_flags(run, *FLAGS), tmp_path / "c.log", env)
  assert proc.wait(900) == 0, (tmp_path / "c.log").read_text()[-3000:]

  got, want = helpers.final_state(run, STEPS), helpers.final_state(ref, STEPS)
  _check_holds_ema_and_rmsprop(want)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want),
                          strict=True):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  assert _logged(run) == _logged(ref)
  with open(os.path.join(run, "summary.json")) as f, open(os.path.join(ref, "summary.json")) as g:
    s_run, s_ref = json.load(f), json.load(g)
  assert s_run["status"] == "finished"
  assert s_run["final/top1"] == s_ref["final/top1"]
