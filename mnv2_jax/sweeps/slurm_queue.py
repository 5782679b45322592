"""What SLURM says of a sweep's array tasks: state, restarts, exit code, per array index.

Read with ``scontrol show job -o <job id>`` (one line per array task, pending ranges included;
it knows finished jobs until the controller's `MinJobAge`, 300 s by default), and for jobs
the controller no longer knows, ``sacct`` where accounting is configured. Every query is
best-effort: no SLURM, or a job that neither knows, gives no entry, and callers fall back to
the run directories (`mnv2_jax.run_record`).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence

LIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED",
                  "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED"})


@dataclasses.dataclass(frozen=True)
class TaskState:
  """One array task as SLURM reports it."""
  job_id: str        # the array's job id
  index: int         # the array task index
  state: str         # JobState, e.g. PENDING, RUNNING, COMPLETED, FAILED, CANCELLED
  reason: str = ""
  restarts: int = 0  # times the task was requeued
  exit_code: int | None = None

  @property
  def live(self) -> bool:
    """Queued or running: submitting the run again would run it twice."""
    return self.state in LIVE


def expand_indices(spec: str) -> list[int]:
  """``"0"``, ``"2-5%2"``, ``"1,3-4"`` -> the task indices (the ``%K`` limit dropped)."""
  out: list[int] = []
  for part in spec.split("%")[0].split(","):
    if not part:
      continue
    lo, _, hi = part.partition("-")
    step = 1
    if ":" in hi:
      hi, step_text = hi.split(":")
      step = int(step_text)
    out.extend(range(int(lo), int(hi or lo) + 1, step))
  return out


def _field(line: str, key: str) -> str | None:
  m = re.search(rf"(?:^|\s){key}=(\S*)", line)
  return m.group(1) if m else None


def parse_scontrol(text: str) -> list[TaskState]:
  """Parses ``scontrol show job -o`` output (one job or array task per line)."""
  out = []
  for line in text.splitlines():
    array_job, tasks, state = (_field(line, "ArrayJobId"), _field(line, "ArrayTaskId"),
                               _field(line, "JobState"))
    if not (array_job and tasks and state):
      continue
    exit_field = _field(line, "ExitCode") or ""
    exit_code = int(exit_field.split(":")[0]) if re.fullmatch(r"\d+:\d+", exit_field) else None
    for index in expand_indices(tasks):
      out.append(TaskState(array_job, index, state, _field(line, "Reason") or "",
                           int(_field(line, "Restarts") or 0), exit_code))
  return out


def parse_sacct(text: str) -> list[TaskState]:
  """Parses ``sacct -n -P -X -o JobID,State,ExitCode`` lines like ``12_3|COMPLETED|0:0``."""
  out = []
  for line in text.splitlines():
    parts = line.split("|")
    if len(parts) < 3 or "_" not in parts[0]:
      continue
    job_id, _, tasks = parts[0].partition("_")
    state = parts[1].split()[0] if parts[1] else ""
    exit_code = int(parts[2].split(":")[0]) if re.fullmatch(r"\d+:\d+", parts[2]) else None
    for index in expand_indices(tasks.strip("[]")):
      out.append(TaskState(job_id, index, state, exit_code=exit_code))
  return out


def _call(argv: Sequence[str]) -> str | None:
  if shutil.which(argv[0]) is None:
    return None
  try:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return done.stdout if done.returncode == 0 else None


def query(job_ids: Iterable[str]) -> dict[tuple[str, int], TaskState]:
  """{(job id, index): state} for the array tasks SLURM knows of; {} without SLURM."""
  found: dict[tuple[str, int], TaskState] = {}
  unknown = []
  for job_id in dict.fromkeys(job_ids):
    text = _call(["scontrol", "show", "job", "-o", job_id])
    states = parse_scontrol(text) if text else []
    found.update({(s.job_id, s.index): s for s in states})
    if not states:
      unknown.append(job_id)
  if unknown:
    text = _call(["sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j",
                  ",".join(unknown)])
    found.update({(s.job_id, s.index): s for s in parse_sacct(text or "")})
  return found
