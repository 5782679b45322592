"""`mnv2_jax.sweeps.status`: a run's state from its run directory and SLURM's view of it.

Run directories are laid out as the trainer leaves them (`mnv2_jax.run_record`): nothing, files
without a summary, or a summary.json whose status the trainer wrote. SLURM's view is a
`slurm_queue.TaskState`; the real queries run in tests/sweeps/test_slurm.py.
"""

import json

import pytest

from mnv2_jax.sweeps import slurm_queue
from mnv2_jax.sweeps import status


def _workdir(tmp_path, written=None, files=False):
  d = tmp_path / "run"
  if written or files:
    d.mkdir()
    (d / "metrics.jsonl").write_text("")
  if written:
    (d / "summary.json").write_text(json.dumps({"status": written}))
  return str(d)


def _task(state, restarts=0, exit_code=None):
  return slurm_queue.TaskState("40", 0, state, restarts=restarts, exit_code=exit_code)


@pytest.mark.parametrize("written,files,task,want", [
    (None, False, None, "pending"),
    (None, False, _task("PENDING"), "queued"),
    ("running", True, _task("RUNNING"), "running"),
    ("running", True, None, "running"),            # no SLURM view (a local launch)
    ("preempted", True, _task("PENDING", restarts=1), "requeued"),
    ("preempted", True, _task("PENDING"), "requeued"),
    (None, True, _task("PENDING", restarts=1), "requeued"),
    ("preempted", True, None, "preempted"),
    ("preempted", True, _task("CANCELLED"), "preempted"),
    ("failed", True, _task("FAILED", exit_code=1), "failed"),
    ("running", True, _task("TIMEOUT"), "failed"),
    ("running", True, _task("OUT_OF_MEMORY"), "failed"),
    (None, True, None, "interrupted"),
    ("finished", True, _task("COMPLETED", exit_code=0), "finished"),
    ("finished", True, _task("PENDING", restarts=2), "finished"),
])
def test_combine(tmp_path, written, files, task, want):
  got = status.combine("r", _workdir(tmp_path, written, files), task)
  assert got.state == want, got
  assert got.state in status.STATES


def test_render_counts_and_describes(tmp_path):
  states = [status.combine("a", _workdir(tmp_path, "preempted", True),
                           _task("PENDING", restarts=1)),
            status.RunState("b", "finished")]
  text = status.render(states)
  assert text.splitlines()[0] == "# 2 runs: 1 finished, 1 requeued"
  assert "a  requeued  (job 40_0: pending, 1 restart(s))" in text


def test_latest_submission_of_each_run_wins(tmp_path):
  (tmp_path / "slurm").mkdir()
  (tmp_path / "slurm" / "jobs.json").write_text(json.dumps([
      {"job_id": "40", "runs": ["a", "b"]}, {"job_id": "45", "runs": ["b"]}]))
  assert status.latest_tasks(str(tmp_path)) == {"a": ("40", 0), "b": ("45", 0)}
