"""Plain-file sink: ``config.json``, ``metrics.jsonl`` and ``summary.json`` in the workdir.

These files are the ground truth of a run: tests assert on them and the results tooling reads
them, whatever happened to W&B. So they are written defensively:

* ``metrics.jsonl`` holds one JSON object per line, ``{"step": 100, "train/loss": 2.3, ...}``,
  appended and flushed on every call, so a crash loses at most the line being written.
* On resume from a checkpoint at step ``S`` the lines with ``step > S`` (logged after the
  checkpoint and about to be logged again) are dropped first, so steps are never duplicated.
  A torn last line from a crash is dropped too.
* ``config.json`` and ``summary.json`` are replaced atomically (temporary file in the same
  directory, fsync, ``os.replace``), so a crash mid-write leaves the previous version intact.

Non-finite scalars are written as ``null`` so the file stays strict JSON (readable by ``jq``
and browsers, not only by Python).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from absl import logging as absl_logging

from mnv2_jax import run_record
from mnv2_jax.logging import base

# The run directory layout is `mnv2_jax.run_record`'s.
CONFIG_FILE = run_record.CONFIG
METRICS_FILE = run_record.METRICS
SUMMARY_FILE = run_record.SUMMARY


def atomic_write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` so that readers see the old or the new file, never half of it.

  The bytes go to a temporary file in the same directory (``os.replace`` is atomic only within
  one filesystem), are fsynced, and the temporary file then replaces ``path``. On any failure
  the temporary file is removed and the exception propagates.
  """
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp_path = tempfile.mkstemp(
      dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException:
    try:
      os.unlink(tmp_path)
    except FileNotFoundError:
      pass
    raise


def atomic_write_json(path: str, obj: Any) -> None:
  """Serialises ``obj`` first (so a bad value touches no file), then ``atomic_write_text``."""
  atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _finite_or_none(value: Any) -> Any:
  """Maps NaN/inf floats (anywhere in a JSON tree) to None so output is strict JSON."""
  if isinstance(value, float):
    return value if base.is_finite(value) else None
  if isinstance(value, dict):
    return {k: _finite_or_none(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_finite_or_none(v) for v in value]
  return value


def read_metrics(path: str) -> list[dict[str, Any]]:
  """Reads a ``metrics.jsonl`` file, skipping (and warning about) unparsable lines."""
  rows = []
  if not os.path.exists(path):
    return rows
  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        absl_logging.warning("%s:%d: dropping unparsable line %r", path, lineno, line[:80])
        continue
      if isinstance(row, dict) and isinstance(row.get("step"), int):
        rows.append(row)
      else:
        absl_logging.warning("%s:%d: dropping line without integer step", path, lineno)
  return rows


def load_json_object(path: str) -> dict[str, Any]:
  """The JSON object in ``path``, or {} (with a warning if it exists but is unreadable)."""
  if not os.path.exists(path):
    return {}
  try:
    with open(path, encoding="utf-8") as f:
      value = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    absl_logging.warning("Could not read %s (%s); starting from an empty one", path, e)
    return {}
  return value if isinstance(value, dict) else {}


class JsonlWriter:
  """Writes ``config.json``, ``metrics.jsonl`` and ``summary.json`` under ``workdir``.

  ``write_config`` and ``write_summary`` merge their argument into what this writer wrote
  before (top-level keys, like ``wandb.config.update``/``run.summary.update``) and rewrite the
  whole file atomically. When resuming, the existing files are loaded first so they keep the
  keys written before the restart.

  Args:
    workdir: run directory; created if missing.
    resume_from_step: if given, see ``resume_from_step``; call it with the restored checkpoint
      step (0 for a run that starts from scratch in a used workdir).
  """

  def __init__(self, workdir: str, *, resume_from_step: int | None = None):
    self.workdir = workdir
    os.makedirs(workdir, exist_ok=True)
    self.config_path = os.path.join(workdir, CONFIG_FILE)
    self.metrics_path = os.path.join(workdir, METRICS_FILE)
    self.summary_path = os.path.join(workdir, SUMMARY_FILE)
    self._config: dict[str, Any] = {}
    self._summary: dict[str, Any] = {}
    self._file = None
    if resume_from_step is not None:
      self.resume_from_step(resume_from_step)

  def resume_from_step(self, step: int) -> int:
    """Prepares the workdir for a run continuing after checkpoint step ``step``.

    Rewrites ``metrics.jsonl`` (atomically) without the lines whose step is greater than
    ``step`` and without torn/unparsable lines. For ``step > 0`` it also loads the existing
    ``config.json``/``summary.json`` so that later writes add to them; ``step == 0`` (a fresh
    start in a used workdir) starts both empty. Returns the number of lines dropped.
    """
    self._close_file()
    dropped = 0
    if os.path.exists(self.metrics_path):
      with open(self.metrics_path, encoding="utf-8") as f:
        total = sum(1 for line in f if line.strip())
      kept = [row for row in read_metrics(self.metrics_path) if row["step"] <= step]
      dropped = total - len(kept)
      text = "".join(json.dumps(row, allow_nan=False) + "\n" for row in kept)
      atomic_write_text(self.metrics_path, text)
      if dropped:
        absl_logging.info("Resuming at step %d: dropped %d metric lines from %s",
                          step, dropped, self.metrics_path)
    self._config = load_json_object(self.config_path) if step > 0 else {}
    self._summary = load_json_object(self.summary_path) if step > 0 else {}
    return dropped

  def _open_file(self):
    if self._file is None:
      # Kept open between writes; closed by close() or resume_from_step().
      self._file = open(self.metrics_path, "a", encoding="utf-8")  # pylint: disable=R1732
    return self._file

  def _close_file(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None

  def write_config(self, config: Mapping[str, Any]) -> None:
    self._config.update(_finite_or_none(base.to_json_value(config)))
    atomic_write_json(self.config_path, self._config)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if not scalars:
      return
    row: dict[str, Any] = {"step": int(step)}
    for key, value in scalars.items():
      if key == "step":
        raise ValueError("'step' is reserved in metrics.jsonl; pass it as the step argument")
      row[key] = _finite_or_none(base.to_float(value))
    f = self._open_file()
    f.write(json.dumps(row, allow_nan=False) + "\n")
    f.flush()

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    self._summary.update(_finite_or_none(base.to_json_value(summary)))
    atomic_write_json(self.summary_path, self._summary)

  def close(self) -> None:
    self._close_file()
