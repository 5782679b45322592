"""`mnv2-sweep ... --status`: each run's state, from its run directory and from SLURM.

A run's state combines what its trainer last wrote (`mnv2_jax.run_record`) with what SLURM
says of the latest array task that ran it (`mnv2_jax.sweeps.slurm_queue`, when the sweep was
submitted and SLURM answers):

    finished    summary.json says finished
    running     SLURM runs it (or, without SLURM, its summary says running)
    queued      submitted, waiting for its first start
    requeued    preempted or requeued, waiting to start again (SLURM restarts > 0)
    preempted   stopped by SIGTERM after a checkpoint, not queued: resubmit to resume
    failed      the trainer failed, or SLURM ended the task (FAILED, TIMEOUT, OUT_OF_MEMORY...)
    interrupted files but no live job and no final status (killed): relaunch to resume
    pending     never started
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence

from mnv2_jax import run_record
from mnv2_jax.sweeps import slurm
from mnv2_jax.sweeps import slurm_queue

STATES = ("finished", "running", "queued", "requeued", "preempted", "failed", "interrupted",
          "pending")


@dataclasses.dataclass(frozen=True)
class RunState:
  name: str
  state: str                                # one of STATES
  task: slurm_queue.TaskState | None = None  # the latest SLURM array task of the run

  @property
  def live(self) -> bool:
    return self.task is not None and self.task.live

  def describe(self) -> str:
    if self.task is None:
      return f"{self.name}  {self.state}"
    t = self.task
    extra = ", ".join(x for x in (
        t.state.lower(), f"reason {t.reason}" if t.reason and t.reason != "None" else "",
        f"{t.restarts} restart(s)" if t.restarts else "",
        f"exit {t.exit_code}" if t.exit_code is not None and not t.live else "") if x)
    return f"{self.name}  {self.state}  (job {t.job_id}_{t.index}: {extra})"


def latest_tasks(sweep_dir: str) -> dict[str, tuple[str, int]]:
  """{run name: (job id, array index)} of the latest submission of each run."""
  out = {}
  for job in slurm.read_jobs(sweep_dir):
    for index, name in enumerate(job.get("runs", [])):
      out[name] = (str(job["job_id"]), index)
  return out


def combine(name: str, workdir: str, task: slurm_queue.TaskState | None) -> RunState:
  """The state of one run (see the module docstring for the rules)."""
  record, written = run_record.run_status(workdir), run_record.trainer_status(workdir)
  if record == run_record.FINISHED:
    return RunState(name, "finished", task)
  if task is not None and task.live:
    if task.state in ("RUNNING", "COMPLETING", "CONFIGURING"):
      return RunState(name, "running", task)
    return RunState(name, "requeued" if task.restarts or written == run_record.PREEMPTED
                    else "queued", task)
  if written == run_record.PREEMPTED:
    return RunState(name, "preempted", task)
  if record == run_record.FAILED or (task is not None and task.state not in ("COMPLETED",)):
    return RunState(name, "failed", task)
  if task is None and written == run_record.RUNNING:
    return RunState(name, "running", task)  # no SLURM view: trust the run (e.g. local)
  return RunState(name, "interrupted" if record == run_record.INTERRUPTED else "pending", task)


def sweep_states(sweep_dir: str, runs: Mapping[str, str]) -> list[RunState]:
  """States of `runs` ({name: workdir}), asking SLURM about the sweep's submissions."""
  where = latest_tasks(sweep_dir)
  known = slurm_queue.query({job for name, (job, _) in where.items() if name in runs})
  return [combine(name, workdir, known.get(where.get(name, ("", -1))))
          for name, workdir in runs.items()]


def render(states: Sequence[RunState]) -> str:
  counts = collections.Counter(s.state for s in states)
  head = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
  return "\n".join([f"# {len(states)} runs: {head}"] + [s.describe() for s in states])
