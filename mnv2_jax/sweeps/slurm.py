"""SLURM: a sweep's pending runs as one job array, one array task per run.

    mnv2-sweep experiments/fig5_pareto.py --preset=paper --launcher=slurm \
        --slurm_partition=gpu --slurm_nodes=2 --slurm_gpus_per_node=8 --slurm_time=2-00:00:00
    mnv2-sweep ... --emit=slurm        # write the batch script for review; submit nothing

Plain `sbatch` scripts, not a library such as submitit: each run is already a shell command
(the trainer's CLI), the script is short enough to review before it spends GPU-days, and
requeueing needs nothing beyond SLURM's own `--requeue`. Files, under ``<sweep_dir>/slurm/``:

    array-<k>.sbatch    the k-th submission's script (its runs listed inside, by task index)
    jobs.json           every submission: job id, script, run name of each array task
    logs/%A_%a.out      SLURM's output of each array task (the trainer's goes to
                        <run>/launch.log, appended across attempts, as for local runs)

Each array task runs ``srun <trainer>``: nodes x tasks-per-node processes (one per GPU when
GPUs are requested), and the trainer (``--multihost``) initialises `jax.distributed` from
SLURM's environment. Preemption: SLURM's SIGTERM (``scontrol requeue``, preemption, or
``--signal`` before the time limit) makes the trainer save a checkpoint at a step all its
processes agree on and exit 143 (`mnv2_jax.preemption`). A job SLURM requeues itself restarts
the script; at the time limit the script requeues its own task. The next attempt resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from mnv2_jax.sweeps import slurm_queue

PREEMPTED_EXIT = 143  # the trainer's exit status after a checkpoint on SIGTERM (mnv2_jax.main)
DIR, JOBS = "slurm", "jobs.json"
# sbatch --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds (sbatch(1)); or a named unlimited limit.
_TIME = re.compile(r"^(\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}|UNLIMITED|INFINITE)$")
_MEM = re.compile(r"^\d+[KMGT]?$")


class SlurmError(ValueError):
  """Bad SLURM options, or SLURM refused or could not be reached (the message says which)."""


@dataclasses.dataclass(frozen=True)
class Options:
  """Per-run resources and the job array's settings (each field is a ``--slurm_<field>`` flag).

  A run takes ``nodes`` nodes with ``tasks_per_node`` processes each. With GPUs the default is
  one process per GPU (``tasks_per_node = gpus_per_node``); without, one process per node.
  """
  partition: str | None = None
  account: str | None = None
  time: str | None = None               # per run, sbatch --time format
  nodes: int = 1
  gpus_per_node: int | None = None      # None: no GPUs requested (CPU runs)
  tasks_per_node: int | None = None     # default: gpus_per_node, else 1
  cpus_per_task: int | None = None
  mem: str | None = None                # per node, e.g. 64G
  max_running: int | None = None        # the array's %K: at most K runs at once
  signal_s: int = 120                   # SIGTERM this long before the time limit
  sbatch: tuple[str, ...] = ()          # extra #SBATCH lines, e.g. ("--qos=high",)
  setup: str | None = None              # shell line run first, e.g. "source .venv/bin/activate"
  job_name: str | None = None           # default: mnv2:<group>

  @property
  def processes_per_node(self) -> int:
    if self.tasks_per_node is not None:
      return self.tasks_per_node
    return self.gpus_per_node or 1

  @property
  def processes(self) -> int:
    return self.nodes * self.processes_per_node

  def validate(self) -> "Options":
    """Raises SlurmError naming the flag; returns self."""
    for name in ("nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "max_running"):
      value = getattr(self, name)
      if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                or value < 1):
        raise SlurmError(f"--slurm_{name} must be a positive integer, got {value!r}")
    if not isinstance(self.signal_s, int) or self.signal_s < 0:
      raise SlurmError(f"--slurm_signal_s must be an integer >= 0, got {self.signal_s!r}")
    if self.time is not None and not _TIME.match(self.time):
      raise SlurmError(f"--slurm_time={self.time!r} is not a SLURM time: use MINUTES, "
                       "MINUTES:SECONDS, HOURS:MINUTES:SECONDS, DAYS-HOURS, "
                       "DAYS-HOURS:MINUTES or DAYS-HOURS:MINUTES:SECONDS")
    if self.mem is not None and not _MEM.match(self.mem):
      raise SlurmError(f"--slurm_mem={self.mem!r} must be a number with an optional K/M/G/T "
                       "suffix (e.g. 64G)")
    for line in self.sbatch:
      if not line.startswith("--") or "\n" in line:
        raise SlurmError(f"--slurm_sbatch={line!r} must be one sbatch option such as "
                         "--qos=high")
    for name in ("partition", "account", "job_name", "setup"):
      value = getattr(self, name)
      if value is not None and (not value or "\n" in value):
        raise SlurmError(f"--slurm_{name} must be a non-empty single line, got {value!r}")
    return self


def add_flags(parser: argparse.ArgumentParser) -> None:
  """The ``--slurm_*`` flags of mnv2-sweep (one per `Options` field)."""
  g = parser.add_argument_group("SLURM (--launcher=slurm, --emit=slurm)")
  g.add_argument("--slurm_config", default=None,
                 help="YAML/JSON file of Options fields (partition: gpu, nodes: 2, ...); "
                      "--slurm_* flags override it")
  g.add_argument("--slurm_partition", default=None)
  g.add_argument("--slurm_account", default=None)
  g.add_argument("--slurm_time", default=None, help="per-run limit, e.g. 1-00:00:00")
  g.add_argument("--slurm_nodes", type=int, default=None, help="nodes per run (default 1)")
  g.add_argument("--slurm_gpus_per_node", type=int, default=None)
  g.add_argument("--slurm_tasks_per_node", type=int, default=None,
                 help="processes per node (default: one per GPU, else 1)")
  g.add_argument("--slurm_cpus_per_task", type=int, default=None)
  g.add_argument("--slurm_mem", default=None, help="memory per node, e.g. 64G")
  g.add_argument("--slurm_max_running", type=int, default=None,
                 help="at most this many runs at once (the array's %%K)")
  g.add_argument("--slurm_signal_s", type=int, default=None,
                 help="checkpoint and requeue this many seconds before the time limit "
                      f"(default {Options.signal_s})")
  g.add_argument("--slurm_sbatch", action="append", default=None, metavar="OPTION",
                 help="extra #SBATCH line (repeatable), e.g. --slurm_sbatch=--qos=high")
  g.add_argument("--slurm_setup", default=None,
                 help="shell line run before the trainer, e.g. 'source .venv/bin/activate'")
  g.add_argument("--slurm_job_name", default=None)
  g.add_argument("--slurm_wait", action="store_true",
                 help="after submitting, wait until every array task has ended, then print "
                      "each run's state (implied by --report, which then writes the report)")


def flags_given(args: argparse.Namespace) -> list[str]:
  """The ``--slurm_*`` flags set on the command line (to reject them without SLURM)."""
  return [f"--{k}" for k, v in sorted(vars(args).items())
          if k.startswith("slurm_") and v not in (None, False)]


def options_from_args(args: argparse.Namespace) -> Options:
  """`Options` from ``--slurm_config`` overridden by the ``--slurm_*`` flags; validated."""
  fields = {f.name for f in dataclasses.fields(Options)}
  values: dict[str, Any] = {}
  if args.slurm_config:
    import yaml  # pylint: disable=g-import-not-at-top
    try:
      with open(args.slurm_config, encoding="utf-8") as f:
        loaded = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
      raise SlurmError(f"--slurm_config={args.slurm_config}: {e}") from e
    if not isinstance(loaded, dict) or set(loaded) - fields:
      got = sorted(loaded) if isinstance(loaded, dict) else repr(loaded)
      raise SlurmError(f"--slurm_config={args.slurm_config}: expected a mapping with keys in "
                       f"{sorted(fields)}, got {got}")
    values.update(loaded)
  for name in fields:
    flag = getattr(args, f"slurm_{name}", None)
    if flag is not None:
      values[name] = flag
  if "sbatch" in values:
    values["sbatch"] = tuple([values["sbatch"]] if isinstance(values["sbatch"], str)
                             else values["sbatch"])
  return Options(**values).validate()


@dataclasses.dataclass(frozen=True)
class ArrayTask:
  """One run of the array: its name, workdir and trainer command."""
  name: str
  workdir: str
  argv: Sequence[str]


def render_script(tasks: Sequence[ArrayTask], opts: Options, *, job_name: str, log_dir: str,
                  cwd: str) -> str:
  """The batch script: one array task per run (paths absolute; `cwd` is where it runs)."""
  if not tasks:
    raise ValueError("no runs to submit")
  array = f"0-{len(tasks) - 1}" + (f"%{opts.max_running}" if opts.max_running else "")
  lines = ["#!/bin/bash",
           f"# mnv2-sweep: {len(tasks)} runs as one job array (generated; submit with sbatch).",
           f"#SBATCH --job-name={opts.job_name or job_name}",
           f"#SBATCH --array={array}",
           f"#SBATCH --nodes={opts.nodes}",
           f"#SBATCH --ntasks-per-node={opts.processes_per_node}"]
  if opts.gpus_per_node:
    lines.append(f"#SBATCH --gpus-per-node={opts.gpus_per_node}")
  for flag, value in (("cpus-per-task", opts.cpus_per_task), ("mem", opts.mem),
                      ("time", opts.time), ("partition", opts.partition),
                      ("account", opts.account)):
    if value is not None:
      lines.append(f"#SBATCH --{flag}={value}")
  lines += [f"#SBATCH --output={os.path.join(log_dir, '%A_%a.out')}",
            "#SBATCH --open-mode=append",
            "#SBATCH --requeue"]
  if opts.time is not None:
    # To the batch shell only: it forwards SIGTERM to the trainer and requeues this task.
    lines.append(f"#SBATCH --signal=B:USR1@{opts.signal_s}")
  lines += [f"#SBATCH {line}" for line in opts.sbatch]
  lines += ["", "set -u", f"cd {shlex.quote(cwd)}"]
  if opts.setup:
    lines.append(opts.setup)
  lines += ["", 'case "$SLURM_ARRAY_TASK_ID" in']
  for i, task in enumerate(tasks):
    lines.append(f"  {i}) run={shlex.quote(task.name)}; workdir={shlex.quote(task.workdir)}; "
                 f"trainer=({' '.join(shlex.quote(a) for a in task.argv)}) ;;")
  lines += ['  *) echo "no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac",
            'mkdir -p "$workdir"',
            'echo "# $run: array task $SLURM_ARRAY_TASK_ID of job $SLURM_ARRAY_JOB_ID, attempt '
            '$((${SLURM_RESTART_COUNT:-0} + 1)), nodes $SLURM_JOB_NODELIST" | '
            'tee -a "$workdir/launch.log"',
            "# Time limit near (--signal=B:USR1): stop the trainer (it checkpoints), requeue.",
            "requeue=0",
            "trap 'requeue=1; kill -TERM \"$srun_pid\" 2>/dev/null' USR1",
            "srun --kill-on-bad-exit=1 \"${trainer[@]}\" >> \"$workdir/launch.log\" 2>&1 &",
            "srun_pid=$!",
            "# A trap interrupts `wait` (status > 128): wait until srun has exited, then once",
            "# more for its own status (bash keeps it for $!; 127 if it was already collected).",
            'wait "$srun_pid"; rc=$?',
            'while kill -0 "$srun_pid" 2>/dev/null; do wait "$srun_pid"; rc=$?; done',
            'wait "$srun_pid"; last=$?; [ "$last" != 127 ] && rc=$last',
            f'if [ "$requeue" = 1 ] && [ "$rc" = {PREEMPTED_EXIT} ]; then',
            '  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            "fi",
            'exit "$rc"', ""]
  return "\n".join(lines)


def slurm_dir(sweep_dir: str) -> str:
  return os.path.join(sweep_dir, DIR)


def read_jobs(sweep_dir: str) -> list[dict[str, Any]]:
  """The submissions recorded in ``slurm/jobs.json`` (oldest first; [] when none)."""
  try:
    with open(os.path.join(slurm_dir(sweep_dir), JOBS), encoding="utf-8") as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError):
    return []


def write_script(sweep_dir: str, script: str) -> str:
  """Writes the next ``slurm/array-<k>.sbatch``; returns its path."""
  out = slurm_dir(sweep_dir)
  os.makedirs(os.path.join(out, "logs"), exist_ok=True)
  k = 1 + sum(1 for f in os.listdir(out) if re.fullmatch(r"array-\d+\.sbatch", f))
  path = os.path.join(out, f"array-{k}.sbatch")
  with open(path, "w", encoding="utf-8") as f:
    f.write(script)
  os.chmod(path, 0o755)
  return path


def _run(argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
  return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                        check=False, stdin=subprocess.DEVNULL)


def check_reachable(opts: Options) -> None:
  """Before anything is written: sbatch on PATH, SLURM answering, the partition known to it."""
  for tool in ("sbatch", "sinfo", "scontrol"):
    if shutil.which(tool) is None:
      raise SlurmError(f"--launcher=slurm: `{tool}` is not on PATH (run on a SLURM login "
                       "node, or use --emit=slurm to only write the batch script)")
  try:
    info = _run(["sinfo", "-h", "-o", "%R"])
  except subprocess.TimeoutExpired as e:
    raise SlurmError("--launcher=slurm: `sinfo` did not answer in 60 s") from e
  if info.returncode != 0:
    raise SlurmError(f"--launcher=slurm: `sinfo` failed, SLURM is not reachable: "
                     f"{info.stderr.strip()[-500:]}")
  partitions = sorted(set(info.stdout.split()))
  if opts.partition is not None and opts.partition not in partitions:
    raise SlurmError(f"--slurm_partition={opts.partition!r} is not a partition of this "
                     f"cluster; sinfo lists {partitions}")


def submit(sweep_dir: str, script_path: str, tasks: Sequence[ArrayTask]) -> str:
  """``sbatch script``; records the job in jobs.json; returns the array's job id."""
  done = _run(["sbatch", "--parsable", script_path])
  if done.returncode != 0:
    raise SlurmError(f"sbatch failed: {done.stderr.strip()[-1000:]}")
  job_id = done.stdout.strip().split(";")[0]
  _record(sweep_dir, job_id, script_path, tasks)
  return job_id


def wait(job_id: str, poll_s: float = 2.0) -> None:
  """Blocks until no task of the array is queued or running (requeued attempts included).

  Polls ``scontrol`` (`slurm_queue.query`) every `poll_s` seconds rather than using
  ``sbatch --wait``, whose poll interval doubles up to 32 s. A job the controller no longer
  knows (three answers in a row: one may be a busy controller's) counts as ended.
  """
  unknown = 0
  while unknown < 3:
    tasks = slurm_queue.query([job_id])
    if tasks and not any(t.live for t in tasks.values()):
      return
    unknown = 0 if tasks else unknown + 1
    time.sleep(poll_s)


def _record(sweep_dir: str, job_id: str, script_path: str, tasks: Sequence[ArrayTask]) -> None:
  jobs = read_jobs(sweep_dir)
  jobs.append({"job_id": job_id, "script": script_path, "submitted": time.time(),
               "runs": [t.name for t in tasks]})
  path = os.path.join(slurm_dir(sweep_dir), JOBS)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(jobs, f, indent=2)
    f.write("\n")
  os.replace(path + ".tmp", path)
