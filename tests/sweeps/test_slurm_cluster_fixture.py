"""The `slurm_cluster` fixture (tests/sweeps/slurm_cluster.py) gives a working SLURM: array
tasks run two at a time on the 2-CPU node, `srun -n 2` starts a 2-process jax.distributed
job, and a requeued job runs again within seconds. ~15 s, most of it the requeue's hold."""

from __future__ import annotations

import re
import sys
import time

import slurm_cluster as sc


def test_array_runs_every_task_two_at_a_time(slurm_cluster, tmp_path):
  stamp = "date +%s.%N"
  job = slurm_cluster.sbatch(
      "--array=0-3%2", f"--output={tmp_path}/%a.out",
      f"--wrap={stamp}; sleep 1; {stamp}")
  final = slurm_cluster.wait_job(job, timeout=60)
  assert sorted(final) == [f"{job}_{i}" for i in range(4)]
  assert {i.state for i in final.values()} == {"COMPLETED"}, final
  spans = [tuple(map(float, (tmp_path / f"{i}.out").read_text().split())) for i in range(4)]
  most_at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
  assert most_at_once == 2, spans  # %2 throttle, and 2 CPUs: never more, but two at once


def test_srun_starts_a_jax_distributed_job(slurm_cluster):
  env = {**slurm_cluster.env, "JAX_PLATFORMS": "cpu"}  # jax 0.10: gloo CPU collectives by default
  code = "import jax; jax.distributed.initialize(); print(jax.process_count())"
  res = slurm_cluster.run(["srun", "-n", "2", sys.executable, "-c", code], env=env, timeout=120)
  assert res.stdout.split() == ["2", "2"], res


def _wait_for_text(path, text: str, timeout: float) -> None:
  """Waits until file `path` exists and contains `text` (then returns), or `timeout` s."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if path.exists() and text in path.read_text():
      return
    time.sleep(0.1)


def test_requeued_job_runs_again_within_seconds(slurm_cluster, tmp_path):
  out = tmp_path / "out"
  job = slurm_cluster.sbatch(
      "--requeue", f"--output={out}", "--open-mode=append",
      "--wrap=echo restart=${SLURM_RESTART_COUNT:-0}; exec sleep 60")
  slurm_cluster.wait_state(job, "RUNNING", timeout=30)
  # RUNNING in slurmctld can come before the batch script's first line has run: requeueing
  # then would kill it before it wrote "restart=0" (seen once in CI). Wait for the line.
  _wait_for_text(out, "restart=0", timeout=20)
  slurm_cluster.run(["scontrol", "requeue", job])
  # ~7 s here: held cred_expire (5 s) + 1 s in PENDING (BeginTime), then the next 1 s pass.
  info = slurm_cluster.wait_state(job, "RUNNING", timeout=20)[job]
  assert info.restarts == 1
  _wait_for_text(out, "restart=1", timeout=10)
  slurm_cluster.run(["scancel", job])
  assert slurm_cluster.wait_job(job, timeout=20)[job].state == "CANCELLED"
  # (The output also has slurmstepd's "*** JOB <id> ... CANCELLED ... DUE TO JOB REQUEUE ***".)
  assert re.findall(r"restart=\d", out.read_text()) == ["restart=0", "restart=1"]
  assert [r.state for r in slurm_cluster.jobcomp_records(job)] == ["PENDING", "CANCELLED"]


def test_missing_slurm_names_the_install_command(monkeypatch):
  monkeypatch.setattr(sc.shutil, "which", lambda *a, **k: None)
  why = sc.missing_requirements()
  assert "apt-get install -y slurmctld slurmd slurm-client munge" in why and "root" in why
  assert sc.parse_key_values("A=1 B=x y C=c=d") == {"A": "1", "B": "x y", "C": "c=d"}
