"""`mnv2_jax.sweeps.slurm` without a cluster: options, the batch script, bad input.

Bad SLURM input is rejected by `mnv2-sweep` (exit 2, the flag named) before the sweep dir is
created. The partition check needs a reachable SLURM: tests/sweeps/test_slurm.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess

import pytest

from mnv2_jax.sweeps import launch
from mnv2_jax.sweeps import slurm

FIG6B = "experiments/fig6b_shortcut.py"
BASE = [FIG6B, "--preset=digits", "--seeds=1", "--only=bottleneck|none"]


def _tasks():
  return [slurm.ArrayTask("run_a", "/sweep/run_a", ["python", "-m", "mnv2_jax.main",
                                                    "--workdir=/sweep/run_a", "--x=a b"]),
          slurm.ArrayTask("run_b", "/sweep/run_b", ["python", "-m", "mnv2_jax.main",
                                                    "--workdir=/sweep/run_b"])]


def _render(**opts):
  return slurm.render_script(_tasks(), slurm.Options(**opts).validate(), job_name="mnv2:g",
                             log_dir="/sweep/slurm/logs", cwd="/repo")


def test_script_requests_the_resources_and_lists_every_run():
  script = _render(partition="gpu", account="lab", time="1-00:00:00", nodes=2,
                   gpus_per_node=8, cpus_per_task=12, mem="200G", max_running=3,
                   sbatch=("--qos=high",), setup="source .venv/bin/activate")
  lines = script.splitlines()
  for want in ("#SBATCH --array=0-1%3", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=8",
               "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=12",
               "#SBATCH --mem=200G", "#SBATCH --time=1-00:00:00", "#SBATCH --partition=gpu",
               "#SBATCH --account=lab", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@120",
               "#SBATCH --qos=high", "#SBATCH --output=/sweep/slurm/logs/%A_%a.out",
               "source .venv/bin/activate", "cd /repo"):
    assert want in lines, want
  assert "run=run_a; workdir=/sweep/run_a;" in script and "'--x=a b'" in script
  assert "run=run_b; workdir=/sweep/run_b;" in script
  subprocess.run(["bash", "-n"], input=script, text=True, check=True)  # valid bash


def test_cpu_runs_request_no_gpus_and_no_time_signal():
  script = _render(tasks_per_node=2)
  assert "#SBATCH --ntasks-per-node=2" in script and "--gpus-per-node" not in script
  assert "#SBATCH --signal" not in script and "%" not in script.split("--array=")[1].split()[0]
  assert slurm.Options(tasks_per_node=2).processes == 2
  assert slurm.Options(nodes=3, gpus_per_node=4).processes == 12
  assert slurm.Options().processes == 1


def _array_task_runs(script, tmp_path, index, trainer_rc):
  """Runs the script's body as SLURM would for array task `index`, srun and scontrol faked
  by shell functions that record their arguments (the real ones: tests/sweeps/test_slurm.py)."""
  log = tmp_path / "calls.log"
  prelude = (f"srun() {{ echo srun \"$@\" >> {log}; return {trainer_rc}; }}\n"
             f"scontrol() {{ echo scontrol \"$@\" >> {log}; }}\n"
             "export -f srun scontrol\n")
  body = script.replace("cd /repo", f"cd {tmp_path}").replace("/sweep/", f"{tmp_path}/")
  env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(index), SLURM_ARRAY_JOB_ID="77",
             SLURM_JOB_NODELIST="node1")
  done = subprocess.run(["bash", "-c", prelude + body], env=env, text=True,
                        capture_output=True, check=False)
  return done, (log.read_text() if log.exists() else "")


def test_each_array_task_runs_its_own_command(tmp_path):
  script = _render()
  done, calls = _array_task_runs(script, tmp_path, 1, 0)
  assert done.returncode == 0, done.stderr
  assert calls.split("\n")[0].startswith("srun --kill-on-bad-exit=1 python -m mnv2_jax.main")
  assert f"--workdir={tmp_path}/run_b" in calls and "run_a" not in calls
  assert "attempt 1" in (tmp_path / "run_b" / "launch.log").read_text()
  done, calls = _array_task_runs(script, tmp_path, 5, 0)
  assert done.returncode == 2 and "no run for array task 5" in done.stderr


def test_a_preempted_trainer_without_the_time_signal_is_not_requeued_by_the_script(tmp_path):
  # Exit 143 from SLURM's own SIGTERM (requeue, preemption, scancel): SLURM decides.
  done, calls = _array_task_runs(_render(time="10"), tmp_path, 0, 143)
  assert done.returncode == 143 and "scontrol" not in calls


@pytest.mark.parametrize("field,value,message", [
    ("nodes", 0, "--slurm_nodes must be a positive integer, got 0"),
    ("gpus_per_node", -2, "--slurm_gpus_per_node must be a positive integer, got -2"),
    ("tasks_per_node", 0, "--slurm_tasks_per_node must be a positive integer"),
    ("max_running", 0, "--slurm_max_running must be a positive integer"),
    ("time", "1:2:3:4", "--slurm_time='1:2:3:4' is not a SLURM time"),
    ("time", "2 days", "--slurm_time='2 days' is not a SLURM time"),
    ("mem", "lots", "--slurm_mem='lots' must be a number"),
    ("sbatch", ("qos=high",), "--slurm_sbatch='qos=high' must be one sbatch option"),
    ("partition", "", "--slurm_partition must be a non-empty single line"),
])
def test_bad_options_name_the_flag(field, value, message):
  with pytest.raises(slurm.SlurmError, match=message.replace("[", r"\[")):
    slurm.Options(**{field: value}).validate()


@pytest.mark.parametrize("value", ["30", "30:00", "4:00:00", "2-12", "2-12:30", "2-12:30:00",
                                   "UNLIMITED"])
def test_slurm_time_formats_are_accepted(value):
  assert slurm.Options(time=value).validate().time == value


def test_config_file_and_flags(tmp_path):
  path = tmp_path / "slurm.yaml"
  path.write_text("partition: gpu\nnodes: 2\ngpus_per_node: 8\nsbatch: --qos=high\n")
  p = argparse.ArgumentParser()
  slurm.add_flags(p)
  opts = slurm.options_from_args(p.parse_args([f"--slurm_config={path}", "--slurm_nodes=4"]))
  assert (opts.partition, opts.nodes, opts.gpus_per_node, opts.sbatch) == \
      ("gpu", 4, 8, ("--qos=high",))
  path.write_text("partitoin: gpu\n")
  with pytest.raises(slurm.SlurmError, match="partitoin"):
    slurm.options_from_args(p.parse_args([f"--slurm_config={path}"]))


@pytest.mark.parametrize("argv,message", [
    (["--emit=slurm", "--slurm_nodes=0"], "--slurm_nodes must be a positive integer"),
    (["--emit=slurm", "--slurm_gpus_per_node=0"], "--slurm_gpus_per_node must be a positive"),
    (["--launcher=slurm", "--slurm_time=90 minutes"], "--slurm_time='90 minutes'"),
    (["--launcher=slurm"], "`sbatch` is not on PATH"),
    (["--emit=commands", "--slurm_nodes=2", "--slurm_wait"],
     "--slurm_nodes, --slurm_wait only apply with --launcher=slurm or --emit=slurm"),
])
def test_mnv2_sweep_rejects_bad_slurm_input_before_writing(argv, message, tmp_path, capsys,
                                                           monkeypatch):
  monkeypatch.setenv("PATH", os.path.dirname(os.__file__))  # no sbatch here
  sweep_dir = tmp_path / "sweep"
  assert launch.main([*BASE, f"--sweep_dir={sweep_dir}", *argv]) == 2
  assert message in capsys.readouterr().err
  assert not sweep_dir.exists()


def test_emit_slurm_writes_the_script_and_submits_nothing(tmp_path, capsys, monkeypatch):
  monkeypatch.setenv("PATH", os.path.dirname(os.__file__))  # no SLURM needed to emit
  sweep_dir = tmp_path / "sweep"
  assert launch.main([*BASE, f"--sweep_dir={sweep_dir}", "--emit=slurm",
                      "--slurm_gpus_per_node=8", "--slurm_nodes=2"]) == 0
  script = (sweep_dir / "slurm" / "array-1.sbatch").read_text()
  assert "#SBATCH --array=0-1\n" in script and script.count("--multihost") == 2
  assert "v2_w0.35_r32_linear_bottleneck_s0" in script and "v2_w0.35_r32_linear_none_s0" in script
  assert not (sweep_dir / "slurm" / "jobs.json").exists()   # nothing submitted
  assert (sweep_dir / "sweep.json").exists()
  assert "sbatch " in capsys.readouterr().out
  # A second emit is a new numbered script, the first one kept for the record.
  assert launch.main([*BASE, f"--sweep_dir={sweep_dir}", "--emit=slurm"]) == 0
  assert (sweep_dir / "slurm" / "array-2.sbatch").exists()
  assert "--multihost" not in (sweep_dir / "slurm" / "array-2.sbatch").read_text()


def test_the_time_limit_signal_stops_the_trainer_and_requeues_the_task(tmp_path):
  """``--signal=B:USR1@N``: the script forwards SIGTERM to srun, and on 143 requeues itself."""
  import signal  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  log = tmp_path / "calls.log"
  # A stand-in srun that, like the trainer, exits 143 on SIGTERM.
  prelude = (f"srun() {{ echo srun >> {log}; trap 'echo srun got TERM >> {log}; exit 143' TERM;"
             " sleep 30 & wait; }\n"
             f"scontrol() {{ echo scontrol \"$@\" >> {log}; }}\n")
  body = _render(time="10").replace("cd /repo", f"cd {tmp_path}").replace(
      "/sweep/", f"{tmp_path}/")
  env = dict(os.environ, SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_JOB_ID="77",
             SLURM_JOB_NODELIST="node1")
  proc = subprocess.Popen(["bash", "-c", prelude + body], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  deadline = time.time() + 20
  while not (log.exists() and "srun" in log.read_text()) and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(0.2)
  proc.send_signal(signal.SIGUSR1)
  assert proc.wait(20) == 143
  assert log.read_text().splitlines() == ["srun", "srun got TERM", "scontrol requeue 77_0"]
