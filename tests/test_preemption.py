"""`mnv2_jax.preemption`: SIGTERM stops every process of a run after the same step.

Real processes, real signals: `tests/preemption_worker.py` steps a loop (no model, so each case
takes seconds) and asks `StopAtSignal.requested(step)` after every step. In the two-process case
(localhost `jax.distributed` job) only ONE process is signalled, while the two run at different
speeds: both must still stop, at one step. Without the agreement the unsignalled process would
run on to its last step (3000) and the signalled one would stop alone.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preemption_worker.py")
ROOT = os.path.dirname(os.path.dirname(WORKER))


def _start(tmp_path, num_processes, process_id, port):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
  log = tmp_path / f"w{process_id}.log"
  return subprocess.Popen(
      [sys.executable, WORKER, f"127.0.0.1:{port}", str(num_processes), str(process_id)],
      stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env), log  # pylint: disable=R1732


def _wait_for_line(log, line, proc, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if line in log.read_text():
      return
    assert proc.poll() is None, log.read_text()[-2000:]
    time.sleep(0.02)
  raise TimeoutError(f"{line!r} not printed in {log}")


def _lines(log, word):
  return [int(l.split()[1]) for l in log.read_text().splitlines() if l.startswith(word + " ")]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow(seconds=15)
def test_one_signalled_process_stops_both_at_one_step(tmp_path):
  port = _free_port()
  procs = [_start(tmp_path, 2, i, port) for i in range(2)]
  _wait_for_line(procs[1][1], "step 30\n", procs[1][0])
  procs[1][0].send_signal(signal.SIGTERM)   # process 1 only
  signalled_after = max(_lines(procs[1][1], "step"))
  for proc, log in procs:
    assert proc.wait(60) == 0, log.read_text()[-2000:]
  text = [log.read_text() for _, log in procs]
  assert all("coordinated True" in t for t in text)
  stops = [_lines(log, "STOP") for _, log in procs]
  assert stops[0] == stops[1] and len(stops[0]) == 1, stops
  assert signalled_after <= stops[0][0] < 3000 - 1, (signalled_after, stops)
  # Each process stepped exactly up to the agreed step, no further.
  assert [max(_lines(log, "step")) for _, log in procs] == [stops[0][0]] * 2


@pytest.mark.slow(seconds=5)
def test_single_process_stops_after_the_signal(tmp_path):
  proc, log = _start(tmp_path, 1, 0, 0)
  _wait_for_line(log, "step 10\n", proc)
  proc.send_signal(signal.SIGTERM)
  signalled_after = max(_lines(log, "step"))
  assert proc.wait(60) == 0, log.read_text()[-2000:]
  assert "coordinated False" in log.read_text()
  stop = _lines(log, "STOP")
  assert len(stop) == 1 and signalled_after <= stop[0] <= signalled_after + 2, \
      (stop, signalled_after)
