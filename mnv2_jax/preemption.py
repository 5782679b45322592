"""Preemption: SIGTERM becomes a stop at one step boundary that every process agrees on.

A scheduler that preempts, requeues or reaches a job's time limit sends SIGTERM, then SIGKILL
after a grace period (SLURM's `KillWait`, 30 s by default). The trainer then saves a checkpoint
and exits 143, and the next attempt resumes from it.

- **One process**: a Python signal handler sets a flag; the loop stops after the step it was
  set in (`StopAtSignal.requested(step)` is True from then on).
- **Several processes** (`jax.distributed` initialised): each process sees the signal at a
  different step, or (a preemption of one host) only one process sees it. Saving at different
  steps would start a collective checkpoint write that never completes. JAX's own preemption
  service does the agreement: `jax.distributed.initialize` starts it, with a SIGTERM notifier
  of its own; when any process is notified, all of them exchange their step counters in the
  background and agree on max + 1. `jax.experimental.multihost_utils.
  reached_preemption_sync_point(step)` is then True on every process at that same step, and
  cheap (no collective) before any notice. It must be called at every step, and the processes
  must start from the same step: both hold in the trainer, which resumes every process from
  the same checkpoint. No Python handler is installed in this mode: it would replace JAX's
  (a process has one SIGTERM handler).
"""

from __future__ import annotations

import signal

from absl import logging
import jax
from jax.experimental import multihost_utils


class Preempted(RuntimeError):
  """SIGTERM received: the state was checkpointed and training stopped cleanly."""


class StopAtSignal:
  """Context manager; `requested(step)` says whether to save and stop after `step`.

  `requested` must be called once per step, in order, on every process (see the module
  docstring). Once it has returned True it keeps returning True.
  """

  def __init__(self):
    self._set = False
    self._old = None
    self._multiprocess = False

  @property
  def coordinated(self) -> bool:
    """True when the stop step is agreed through JAX's preemption service."""
    return self._multiprocess

  def __enter__(self) -> "StopAtSignal":
    self._multiprocess = jax.process_count() > 1
    if self._multiprocess:
      return self
    try:
      self._old = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. some test runners): no handler
      self._old = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM: checkpointing and stopping at the next step boundary.")
    self._set = True

  def requested(self, step: int) -> bool:
    """True when the run must checkpoint `step` and stop."""
    if not self._set and self._multiprocess:
      if multihost_utils.reached_preemption_sync_point(step):
        logging.warning("Preemption notice: every process stops after step %d.", step)
        self._set = True
    return self._set

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)
