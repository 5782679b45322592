"""ConsoleProgress: exact lines, throughput window, ETA formatting."""

from __future__ import annotations

import math

import pytest

from mnv2_jax.logging import console


class _Clock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.mark.parametrize("seconds,text", [
    (0, "0:00:00"), (59.4, "0:00:59"), (61, "0:01:01"), (3600, "1:00:00"),
    (90061, "25:01:01"), (-1, "?"), (math.nan, "?"), (math.inf, "?")])
def test_format_duration(seconds, text):
  assert console.format_duration(seconds) == text


def test_lines_rates_and_eta():
  clock, lines = _Clock(), []
  progress = console.ConsoleProgress(1000, 256, print_fn=lines.append, clock=clock)
  clock.now += 10.0  # 100 steps in 10 s -> 10 steps/s, 2560 img/s, 900 steps left -> 90 s.
  rates = progress.update(100, {"train/loss": 2.34567, "train/top1": 0.125, "other": 1.0})
  assert rates == {"train/images_per_sec": 2560.0, "train/steps_per_sec": 10.0}
  assert lines[-1] == ("step  100/1000 (10.0%) | loss 2.3457 | top1 0.1250 | 2560.0 img/s | "
                       "elapsed 0:00:10 | ETA 0:01:30")

  clock.now += 60.0  # An evaluation pause, excluded from the next window.
  progress.reset_window(100)
  clock.now += 5.0  # 100 steps in 5 s -> 20 steps/s; 800 left -> 40 s.
  rates = progress.update(200, {"train/lr": 0.05})
  assert rates["train/images_per_sec"] == pytest.approx(5120.0)
  assert lines[-1] == ("step  200/1000 (20.0%) | lr 0.0500 | 5120.0 img/s | "
                       "elapsed 0:01:15 | ETA 0:00:40")

  clock.now += 1.0
  progress.update(1000)
  assert lines[-1].endswith("ETA 0:00:00")
  assert lines[-1].startswith("step 1000/1000 (100.0%)")


def test_resumed_run_measures_from_start_step_and_zero_time_is_safe():
  clock, lines = _Clock(), []
  progress = console.ConsoleProgress(100, 8, start_step=50, print_fn=lines.append, clock=clock)
  assert progress.update(50) == {}  # No time has passed: no rate, unknown ETA.
  assert lines[-1] == "step  50/100 (50.0%) | ? img/s | elapsed 0:00:00 | ETA ?"
  clock.now += 2.0
  assert progress.update(60) == {"train/images_per_sec": 40.0, "train/steps_per_sec": 5.0}
  assert lines[-1].endswith("ETA 0:00:08")


def test_default_output_goes_to_absl_logging(caplog):
  caplog.set_level("INFO")
  progress = console.ConsoleProgress(10, 1)
  progress.update(1, {"train/loss": 1.0})
  assert any("step  1/10" in r.getMessage() and "loss 1.0000" in r.getMessage()
             for r in caplog.records)
