"""Runs a sweep's trainer commands as local subprocesses: resumable, sequential or N-parallel.

Resumability is the trainer's: it continues from the checkpoint in its workdir. This module only
decides what to (re)launch from each workdir's ``summary.json``:

- ``finished`` (``"status": "finished"``): skipped;
- ``failed`` / ``interrupted`` (a summary saying running/failed, or a workdir with files but
  no summary): relaunched with the same command, so the trainer resumes;
- ``pending`` (no workdir or an empty one): launched.

Each run's stdout/stderr go to ``<workdir>/launch.log`` (appended across attempts). Do not run
two launchers on one sweep dir at the same time: a run still in progress elsewhere looks
"interrupted" here.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from mnv2_jax import run_record

# The run directory contract (statuses, file names) is `mnv2_jax.run_record`'s.
FINISHED, FAILED, INTERRUPTED, PENDING = (run_record.FINISHED, run_record.FAILED,
                                          run_record.INTERRUPTED, run_record.PENDING)
LOG = run_record.LOG
run_status = run_record.run_status


@dataclasses.dataclass
class Job:
  name: str
  argv: list[str]
  workdir: str
  returncode: int | None = None
  status: str | None = None  # run_status after the process exited


def _progress(total: int):
  """A tqdm bar on stderr if tqdm is importable, else None (a line per run is printed)."""
  try:
    import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return tqdm.tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)


def execute(jobs: Sequence[Job], parallel: int = 1, poll_s: float = 0.2,
            env: dict[str, str] | None = None) -> list[Job]:
  """Runs ``jobs`` with at most ``parallel`` at a time; returns them with return codes set."""
  if parallel < 1:
    raise ValueError(f"parallel must be >= 1, got {parallel}")
  queue = list(jobs)
  running: list[tuple[Job, subprocess.Popen, object]] = []
  bar = _progress(len(queue))
  failures = 0
  try:
    while queue or running:
      while queue and len(running) < parallel:
        job = queue.pop(0)
        os.makedirs(job.workdir, exist_ok=True)
        log = open(os.path.join(job.workdir, LOG), "a", encoding="utf-8")  # pylint: disable=R1732
        log.write(f"$ {' '.join(job.argv)}\n")
        log.flush()
        try:
          proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)
        except OSError as e:  # e.g. the trainer executable does not exist
          log.write(f"could not start: {e}\n")
          log.close()
          job.returncode, job.status = 127, run_status(job.workdir)
          failures += 1
          print(f"{job.name}: could not start: {e}", file=sys.stderr, flush=True)
          if bar is not None:
            bar.update(1)
          continue
        running.append((job, proc, log))
      time.sleep(poll_s if running else 0)
      for item in list(running):
        job, proc, log = item
        if proc.poll() is None:
          continue
        running.remove(item)
        log.close()
        job.returncode = proc.returncode
        job.status = run_status(job.workdir)
        ok = job.returncode == 0 and job.status == FINISHED
        failures += not ok
        message = (f"{job.name}: {'finished' if ok else 'FAILED'} (exit {job.returncode}, "
                   f"status {job.status}; log {os.path.join(job.workdir, LOG)})")
        if bar is not None:
          bar.update(1)
          bar.set_postfix(failed=failures)
          if not ok:
            bar.write(message)
        else:
          print(message, flush=True)
  except KeyboardInterrupt:
    for job, proc, log in running:  # Only our own children, by handle.
      proc.terminate()
    for job, proc, log in running:
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        proc.kill()
      log.close()
    raise
  finally:
    if bar is not None:
      bar.close()
  return list(jobs)
