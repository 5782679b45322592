"""Weights & Biases sink that can never take training down.

What it does beyond calling ``wandb.init``/``run.log``:

* picks online/offline/disabled (``wandb_mode.resolve_mode``) and, if an online start fails,
  retries offline once, so metrics are kept locally and can be synced later;
* catches every exception raised by wandb, logs the first one, and from then on behaves as a
  no-op (the JSONL sink is unaffected);
* keeps the run under ``workdir/wandb`` and quiet (``console="off"``, no system stats);
* records MAdds/params in the run config and ``madds``/``params``/``top1`` in the summary
  (via ``write_summary``), and defines ``eval/top1``/``eval/top5`` with ``summary="max,last"``,
  which is what W&B's cross-run scatter plot (accuracy vs MAdds) needs;
* exposes ``run_id`` so the trainer can checkpoint it and continue the same run after a
  restart (``wandb.init(id=..., resume="allow")``);
* drops steps W&B would drop anyway (lower than the last logged step) with one message, and
  non-finite values of max/min-aggregated metrics, which would poison the best-value summary.

``wandb`` is imported lazily: importing this module costs nothing and ``disabled`` never
touches wandb at all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from absl import logging as absl_logging

from mnv2_jax.logging import base
from mnv2_jax.logging import wandb_mode
from mnv2_jax.logging import wandb_reader

AGGREGATED_METRICS = {
    "eval/top1": "max,last",
    "eval/top5": "max,last",
    "eval/loss": "min,last",
}
"""Metrics whose best value W&B keeps in the run summary (``summary["eval/top1"]["max"]``)."""

MAX_TAG_LENGTH = 64  # wandb.init raises a ValidationError for longer tags.
PLOT_KINDS = ("scatter", "line")


def _settings():
  import wandb  # pylint: disable=g-import-not-at-top
  return wandb.Settings(console="off", x_disable_stats=True, silent=True)


def sanitize_tags(tags: Sequence[Any] | None) -> list[str]:
  """Strings of 1..64 characters, deduplicated in order (wandb rejects anything else)."""
  out: list[str] = []
  for tag in tags or ():
    tag = str(tag)[:MAX_TAG_LENGTH]
    if tag and tag not in out:
      out.append(tag)
  return out


class WandbWriter:
  """``MetricWriter`` backed by one W&B run (call it on process 0 only).

  Attributes:
    requested_mode: the configured mode (auto/online/offline/disabled).
    mode: what is in use: "online", "offline" or "disabled" ("disabled" after a failure).
    run_id: W&B run id, None when disabled or when ``wandb.init`` failed.
    run_dir: the local run directory (``workdir/wandb/<offline-run-...>``) or None.
    failed: True once a wandb exception has switched this writer off.
  """

  def __init__(self, workdir: str, *, mode: str = "auto", project: str | None = "mnv2_jax",
               entity: str | None = None, group: str | None = None,
               job_type: str | None = "train", tags: Sequence[str] = (),
               name: str | None = None, run_id: str | None = None, resume: bool = False,
               config: Mapping[str, Any] | None = None):
    self.requested_mode = wandb_mode.validate_mode(mode)
    self.mode = "disabled"
    self.run_id: str | None = None
    self.run_dir: str | None = None
    self.failed = False
    self._run = None
    self._floor_step = 0
    self._warned: set[str] = set()

    effective, reason = wandb_mode.resolve_mode(mode)
    if mode == "online" and effective != "online":
      absl_logging.warning("W&B: online requested but using %s: %s", effective, reason)
    else:
      absl_logging.info("W&B mode %s (%s)", effective, reason)
    if effective == "disabled":
      return
    if resume and not run_id:
      absl_logging.warning("W&B: resume requested without a run id; starting a new run")
    kwargs = dict(
        dir=workdir, project=project, entity=entity, group=group, job_type=job_type,
        tags=sanitize_tags(tags), name=name, id=run_id,
        resume="allow" if run_id else None,
        config=base.to_json_value(dict(config or {})))
    os.makedirs(workdir, exist_ok=True)  # Else wandb warns "git root ... does not exist".
    run = self._start(effective, kwargs)
    if run is None and effective == "online":
      absl_logging.warning("W&B: online start failed; retrying offline")
      self.failed = False
      effective = "offline"
      run = self._start(effective, kwargs)
    if run is None:
      return
    self._run = run
    self.mode = effective
    self.run_id = run.id
    self._guard("run dir", lambda: setattr(self, "run_dir", os.path.dirname(run.dir)))
    self._floor_step = int(getattr(run, "starting_step", 0) or 0)
    for key, summary in AGGREGATED_METRICS.items():
      self._guard("define_metric", lambda k=key, s=summary: run.define_metric(k, summary=s))

  def _start(self, mode: str, kwargs: dict[str, Any]):
    """``wandb.init`` in ``mode``; returns the run, or None (logged) if anything raised."""
    def init():
      import wandb  # pylint: disable=g-import-not-at-top
      return wandb.init(mode=mode, settings=_settings(), reinit="create_new", **kwargs)
    return self._guard(f"init ({mode})", init)

  def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
    """Runs ``fn``; on any exception logs it once, switches the writer off, returns None."""
    try:
      return fn()
    except Exception as e:  # pylint: disable=broad-except
      if not self.failed:
        absl_logging.error(
            "W&B %s failed: %s: %s. W&B logging is off from here on; metrics.jsonl and "
            "summary.json are unaffected.", what, type(e).__name__, e)
      self.failed = True
      self._run = None
      self.mode = "disabled"
      return None

  def _warn_once(self, key: str, msg: str, *args: Any) -> None:
    if key not in self._warned:
      self._warned.add(key)
      absl_logging.warning("W&B: " + msg, *args)

  @property
  def active(self) -> bool:
    """True while there is a live run to log to."""
    return self._run is not None

  def write_config(self, config: Mapping[str, Any]) -> None:
    if self._run is not None:
      run = self._run
      values = base.to_json_value(dict(config))
      self._guard("config", lambda: run.config.update(values, allow_val_change=True))

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if self._run is None:
      return
    step = int(step)
    if step < self._floor_step:
      self._warn_once("old_step", "skipping step %d (and later ones) below the run's current "
                      "step %d; W&B only accepts increasing steps", step, self._floor_step)
      return
    data = {}
    for key, value in scalars.items():
      try:
        value = base.to_float(value)
      except (TypeError, ValueError):
        self._warn_once(f"bad:{key}", "%s=%r is not a scalar; not logged", key, value)
        continue
      if key in AGGREGATED_METRICS and not math.isfinite(value):
        self._warn_once(f"nonfinite:{key}", "%s=%s at step %d not logged (it would poison "
                        "the best-value summary)", key, value, step)
        continue
      data[key] = value
    if data:
      run = self._run
      self._guard("log", lambda: run.log(data, step=step))
      self._floor_step = step

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    if self._run is not None:
      run = self._run
      values = base.to_json_value(dict(summary))
      self._guard("summary", lambda: run.summary.update(values))

  def _log_media(self, what: str, key: str, make: Callable[[], Any], step: int | None) -> None:
    """Builds a wandb media object and logs it at ``step`` (default: the current step)."""
    if self._run is None:
      return
    run = self._run
    step = self._floor_step if step is None else int(step)
    if step < self._floor_step:
      self._warn_once(f"old_step_media:{key}", "%s %r at step %d below current step %d is "
                      "logged at the current step", what, key, step, self._floor_step)
      step = self._floor_step
    self._guard(what, lambda: run.log({key: make()}, step=step))
    self._floor_step = step

  def log_table(self, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                step: int | None = None) -> None:
    """Logs a ``wandb.Table`` (stored as ``files/media/table/<key>_*.table.json``)."""
    def make():
      import wandb  # pylint: disable=g-import-not-at-top
      return wandb.Table(columns=list(columns), data=[base.to_json_value(list(r)) for r in rows])
    self._log_media("table", key, make, step)

  def log_plot(self, key: str, kind: str, columns: Sequence[str],
               rows: Sequence[Sequence[Any]], *, x: str, y: str, title: str = "",
               stroke: str | None = None, step: int | None = None) -> None:
    """Logs a W&B custom chart (``wandb.plot.scatter`` or ``.line``) over a table of rows.

    ``stroke`` (line only) names the column that splits the data into one line per value.
    Raises ValueError for an unknown ``kind`` (a caller bug, even when W&B is off).
    """
    if kind not in PLOT_KINDS:
      raise ValueError(f"plot kind must be one of {PLOT_KINDS}; got {kind!r}")
    def make():
      import wandb  # pylint: disable=g-import-not-at-top
      table = wandb.Table(columns=list(columns), data=[base.to_json_value(list(r)) for r in rows])
      if kind == "scatter":
        return wandb.plot.scatter(table, x, y, title=title)
      return wandb.plot.line(table, x, y, stroke=stroke, title=title)
    self._log_media("plot", key, make, step)

  def log_image(self, key: str, path: str, *, caption: str | None = None,
                step: int | None = None) -> None:
    """Logs an image file (PNG/JPEG, e.g. a matplotlib figure saved by the report job)."""
    def make():
      import wandb  # pylint: disable=g-import-not-at-top
      return wandb.Image(path, caption=caption)
    self._log_media("image", key, make, step)

  def close(self) -> None:
    """Finishes the run and waits (<= 10 s) until its log is on disk; later calls do nothing.

    The wait makes "closed" mean "readable": wandb 0.31's ``finish`` can return before the
    transaction log is flushed (see ``wandb_reader.wait_for_exit_record``).
    """
    if self._run is None:
      return
    run = self._run
    self._guard("finish", run.finish)
    self._run = None
    if not self.failed and self.run_dir:
      try:
        log = wandb_reader.find_wandb_file(self.run_dir)
        if not wandb_reader.wait_for_exit_record(log, timeout_s=10.0):
          absl_logging.warning("W&B: %s has no exit record 10 s after finish", log)
      except Exception as e:  # pylint: disable=broad-except
        absl_logging.warning("W&B: could not check that the run log was flushed: %s", e)
