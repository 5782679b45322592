"""One console line per logging step: progress, loss, top-1, throughput, elapsed time and ETA.

Example line::

  step   1200/50000 (2.4%) | loss 2.3456 | top1 0.4567 | lr 0.0450 | 1234.5 img/s | \
elapsed 0:12:34 | ETA 3:21:00

Throughput is measured over the window since the previous line (so XLA compilation in the
first window and evaluation pauses, if the trainer calls ``reset_window`` after them, do not
distort later numbers); the ETA extrapolates that window's rate to the remaining steps. The
measured rates are returned so the trainer can log them as ``train/images_per_sec``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from absl import logging as absl_logging

_SHOWN = (("train/loss", "loss"), ("train/top1", "top1"), ("train/lr", "lr"))


def format_duration(seconds: float) -> str:
  """``h:mm:ss`` (hours not capped at 24); ``?`` for a negative or non-finite duration."""
  if not math.isfinite(seconds) or seconds < 0:
    return "?"
  total = int(round(seconds))
  hours, rest = divmod(total, 3600)
  minutes, secs = divmod(rest, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}"


def _info(line: str) -> None:
  absl_logging.info("%s", line)


class ConsoleProgress:
  """Prints training progress; call ``update`` at every logging step.

  Args:
    total_steps: the step at which training ends.
    global_batch_size: images per step over all processes (for images/s).
    start_step: the step training starts (or resumes) from.
    print_fn: where lines go (default ``absl.logging.info``).
    clock: seconds as a float (``time.monotonic``; injectable for tests).
  """

  def __init__(self, total_steps: int, global_batch_size: int, *, start_step: int = 0,
               print_fn: Callable[[str], None] | None = None,
               clock: Callable[[], float] = time.monotonic):
    self.total_steps = int(total_steps)
    self.global_batch_size = int(global_batch_size)
    self._print = print_fn or _info
    self._clock = clock
    self._start_time = clock()
    self._window_time = self._start_time
    self._window_step = int(start_step)

  def reset_window(self, step: int) -> None:
    """Starts a new throughput window at ``step`` (e.g. after an evaluation pause)."""
    self._window_time = self._clock()
    self._window_step = int(step)

  def update(self, step: int, scalars: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Prints the line for ``step`` and returns ``train/images_per_sec``/``steps_per_sec``."""
    now = self._clock()
    step = int(step)
    dt = now - self._window_time
    steps_per_sec = (step - self._window_step) / dt if dt > 0 else math.nan
    images_per_sec = steps_per_sec * self.global_batch_size
    remaining = max(self.total_steps - step, 0)
    if remaining == 0:
      eta = 0.0
    elif math.isfinite(steps_per_sec) and steps_per_sec > 0:
      eta = remaining / steps_per_sec
    else:
      eta = math.nan
    width = len(str(self.total_steps))
    pct = 100.0 * step / self.total_steps if self.total_steps else 100.0
    parts = [f"step {step:{width}d}/{self.total_steps} ({pct:.1f}%)"]
    for key, label in _SHOWN:
      if scalars and key in scalars:
        parts.append(f"{label} {float(scalars[key]):.4f}")
    img = f"{images_per_sec:.1f}" if math.isfinite(images_per_sec) else "?"
    parts.append(f"{img} img/s")
    parts.append(f"elapsed {format_duration(now - self._start_time)}")
    parts.append(f"ETA {format_duration(eta)}")
    self._print(" | ".join(parts))
    self._window_time, self._window_step = now, step
    rates = {}
    if math.isfinite(steps_per_sec):
      rates = {"train/images_per_sec": images_per_sec, "train/steps_per_sec": steps_per_sec}
    return rates
