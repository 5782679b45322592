"""`mnv2-sweep --launcher=slurm` against a real SLURM (the `slurm_cluster` fixture).

1. A 2-run digits sweep (two seeds of one variant, so the second run loads its programs from
   the compile cache) is launched locally, one run at a time, then submitted as a job array
   with ``--report``, exactly as a user types it (a subprocess). While the array runs, one
   task is requeued with ``scontrol requeue``: its trainer gets SIGTERM, checkpoints, exits
   143, SLURM restarts it and it resumes. ``mnv2-sweep`` waits through that, then writes the
   report. Every run, the requeued one included, must be bit-identical to its local twin
   (final state and every logged number). Then ``--status`` and a resubmission (nothing to
   do) are checked.
2. One run of 2 processes (``--slurm_tasks_per_node=2``: ``srun`` starts both, the trainer's
   `jax.distributed` reads SLURM's environment) must train like one process holding 2
   devices (launched locally), to the tolerance tests/train/test_multiprocess.py derives. It
   is requeued mid-run too: both processes must stop after the same step (JAX's preemption
   service, `mnv2_jax.preemption`) and the resumed run must still match.
3. A partition unknown to ``sinfo`` is rejected before anything is written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mnv2_jax import logging as mlog
from mnv2_jax.sweeps import launch
from mnv2_jax.sweeps import slurm
from tests.train import helpers

STEPS = 40
SWEEP = ["experiments/fig6b_shortcut.py", "--preset=digits", "--only=linear_bottleneck"]
TINY = ["--set", f"train.num_steps={STEPS}", "--set", "optim.warmup_epochs=0",
        "--set", "input.global_batch_size=16", "--set", f"train.eval_every_steps={STEPS}",
        "--set", "train.log_every_steps=1", "--set", "train.checkpoint_every_steps=10",
        "--set", "wandb.mode=disabled"]
# As tests/train/test_multiprocess.py: one global batch of synthetic data, so each of two
# processes loads exactly its half of what one process loads.
SYNTHETIC = ["--set", "input.dataset=synthetic", "--set", "input.synthetic_num_examples=16",
             "--set", "input.synthetic_num_classes=10", "--set", "input.eval_batch_size=16",
             "--set", "model.dropout_rate=0.0"]
TIMED = ("train/images_per_sec", "train/steps_per_sec")  # wall-clock rates, not results


def _sweep_cli(args, cluster, **kw):
  """`mnv2-sweep ARGS` as a subprocess in the cluster's environment (as a user runs it)."""
  env = {**cluster.env, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
  return subprocess.Popen([sys.executable, "-m", "mnv2_jax.sweeps.launch", *args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _logged(workdir):
  rows = mlog.read_metrics(os.path.join(workdir, "metrics.jsonl"))
  return [{k: v for k, v in r.items() if k not in TIMED} for r in rows]


def _assert_bit_identical(got_dir, want_dir):
  assert _logged(got_dir) == _logged(want_dir)
  got, want = helpers.final_state(got_dir, STEPS), helpers.final_state(want_dir, STEPS)
  leaves = jax.tree_util.tree_flatten_with_path(got)[0]
  assert len(leaves) > 100
  for (path, a), b in zip(leaves, jax.tree.leaves(want), strict=True):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def _requeue_when_running(cluster, sweep_dir, run, at_step, proc=None, timeout=300):
  """Waits until `run` has logged `at_step`, then `scontrol requeue`s its array task."""
  metrics = os.path.join(sweep_dir, run, "metrics.jsonl")
  deadline = time.time() + timeout
  while time.time() < deadline:
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f"mnv2-sweep ended early:\n{proc.stdout.read()[-3000:]}")
    rows = mlog.read_metrics(metrics) if os.path.exists(metrics) else []
    if rows and rows[-1]["step"] >= at_step:
      break
    time.sleep(0.05)
  else:
    raise TimeoutError(f"{run} did not reach step {at_step}")
  job = next(j for j in slurm.read_jobs(sweep_dir) if run in j["runs"])
  task = f"{job['job_id']}_{job['runs'].index(run)}"
  cluster.run(["scontrol", "requeue", task])
  return task, rows[-1]["step"]


def _attempts(workdir):
  return re.findall(r"attempt (\d+)", open(os.path.join(workdir, "launch.log")).read())


@pytest.mark.slow(seconds=170)
def test_array_sweep_with_a_requeue_is_bit_identical_to_local_runs(slurm_cluster, tmp_path,
                                                                   monkeypatch, capsys):
  local, remote = str(tmp_path / "local"), str(tmp_path / "slurm")
  runs = ["v2_w0.35_r32_linear_bottleneck_s0", "v2_w0.35_r32_linear_bottleneck_s1"]
  # One at a time: the second seed loads the first one's programs from the compile cache, and
  # so do both array tasks.
  assert launch.main([*SWEEP, "--seeds=2", f"--sweep_dir={local}", *TINY]) == 0

  proc = _sweep_cli([*SWEEP, "--seeds=2", f"--sweep_dir={remote}", "--launcher=slurm",
                     f"--slurm_partition={slurm_cluster.partition}", "--slurm_max_running=2",
                     "--report", *TINY], slurm_cluster)
  task, at = _requeue_when_running(slurm_cluster, remote, runs[0], 12, proc)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-4000:]
  assert "# 2 runs: 2 finished" in out and "results tables:" in out
  assert os.path.exists(os.path.join(remote, "results", "report.md"))

  script = open(os.path.join(remote, "slurm", "array-1.sbatch")).read()
  assert "#SBATCH --array=0-1%2" in script and f"--partition={slurm_cluster.partition}" in script
  log0 = open(os.path.join(remote, runs[0], "launch.log")).read()
  stopped = [int(s) for s in re.findall(r"SIGTERM: stopped after step (\d+)", log0)]
  assert len(stopped) == 1 and at <= stopped[0] < STEPS, (stopped, at, log0[-3000:])
  assert _attempts(os.path.join(remote, runs[0])) == ["1", "2"]
  assert _attempts(os.path.join(remote, runs[1])) == ["1"]
  for run in runs:
    with open(os.path.join(remote, run, "summary.json")) as f:
      assert json.load(f)["status"] == "finished"
    _assert_bit_identical(os.path.join(remote, run), os.path.join(local, run))

  # In this process from here on, with the cluster's SLURM_CONF and PATH.
  for key, value in slurm_cluster.env.items():
    monkeypatch.setenv(key, value)
  # --status: both finished; SLURM still knows of the requeue.
  capsys.readouterr()
  assert launch.main([*SWEEP, "--seeds=2", f"--sweep_dir={remote}", "--status", *TINY]) == 0
  status = capsys.readouterr().out
  assert "# 2 runs: 2 finished" in status, status
  assert re.search(rf"{runs[0]}  finished  \(job {task}: completed, 1 restart\(s\), exit 0\)",
                   status), status
  # Resubmitting submits nothing: every run is finished.
  assert launch.main([*SWEEP, "--seeds=2", f"--sweep_dir={remote}", "--launcher=slurm",
                      *TINY]) == 0
  assert "every run is finished" in capsys.readouterr().err
  assert len(slurm.read_jobs(remote)) == 1


@pytest.mark.slow(seconds=130)
def test_two_process_run_under_srun_matches_one_process_with_two_devices(
    slurm_cluster, tmp_path, monkeypatch):
  local, remote = str(tmp_path / "local"), str(tmp_path / "slurm")
  run = "v2_w0.35_r32_linear_bottleneck_s0"
  monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "2")
  assert launch.main([*SWEEP, "--seeds=1", f"--sweep_dir={local}", *TINY, *SYNTHETIC]) == 0
  monkeypatch.delenv("JAX_NUM_CPU_DEVICES")

  proc = _sweep_cli([*SWEEP, "--seeds=1", f"--sweep_dir={remote}", "--launcher=slurm",
                     "--slurm_tasks_per_node=2", "--slurm_wait", *TINY, *SYNTHETIC],
                    slurm_cluster)
  _requeue_when_running(slurm_cluster, remote, run, 12, proc)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-4000:]
  log = open(os.path.join(remote, run, "launch.log")).read()
  assert "mesh: 2 devices over 2 processes" in log, log[-3000:]
  assert "mesh: 2 devices over 1 processes" in open(os.path.join(local, run, "launch.log")).read()
  # Both processes stopped after one agreed step, and the run went on from it.
  agreed = re.findall(r"Preemption notice: every process stops after step (\d+)", log)
  assert len(agreed) == 2 and agreed[0] == agreed[1], log[-3000:]
  assert _attempts(os.path.join(remote, run)) == ["1", "2"]
  want, got = _logged(os.path.join(local, run)), _logged(os.path.join(remote, run))
  assert [r["step"] for r in got] == [r["step"] for r in want]
  losses = [(g["train/loss"], w["train/loss"]) for g, w in zip(got, want) if "train/loss" in w]
  assert len(losses) == STEPS
  assert max(abs(g - w) for g, w in losses) <= 1e-5, losses
  assert max(w for _, w in losses) - min(w for _, w in losses) > 0.1  # a moving trajectory


def test_unknown_partition_is_rejected_before_writing(slurm_cluster, tmp_path):
  sweep_dir = tmp_path / "sweep"
  proc = _sweep_cli([*SWEEP, "--seeds=1", f"--sweep_dir={sweep_dir}", "--launcher=slurm",
                     "--slurm_partition=nosuch", *TINY], slurm_cluster)
  out = proc.communicate(timeout=120)[0]
  assert proc.returncode == 2, out
  assert f"--slurm_partition='nosuch' is not a partition of this cluster; sinfo lists " \
         f"['{slurm_cluster.partition}']" in out
  assert not sweep_dir.exists()
