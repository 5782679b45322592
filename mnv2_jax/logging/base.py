"""The metric-writer interface shared by every sink, plus fan-out and no-op writers.

The trainer talks to one object with four calls (config, scalars, summary, close) and never to a
particular backend, in the style of ``clu.metric_writers``. That keeps the JSONL sink (the
test oracle and the input of the results tooling) and the W&B sink (the dashboard) fed with
exactly the same numbers, and lets process != 0 get a writer that does nothing.

Values arriving here are often 0-d ``jax.Array``/numpy scalars; ``to_json_value`` turns them
into plain Python numbers so every sink serialises the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class MetricWriter(Protocol):
  """What the trainer calls; every sink implements it."""

  def write_config(self, config: Mapping[str, Any]) -> None:
    """Records (or adds to) the run configuration."""

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    """Records scalar metrics (namespaced keys such as ``train/loss``) at ``step``."""

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    """Records (or adds to) the run's final/best numbers."""

  def close(self) -> None:
    """Flushes and releases resources; safe to call twice."""


def to_float(value: Any) -> float:
  """Converts a Python/numpy/jax scalar to ``float`` (device arrays are fetched by ``float``)."""
  return float(value)


def to_json_value(value: Any) -> Any:
  """Converts a config/summary value to plain JSON-compatible Python.

  Why: configs and summaries mix ints, numpy/jax scalars, tuples and ConfigDicts; JSON and W&B
  should both see ints as ints (``params``, ``madds``, ``seed``) and floats as floats.
  Unknown objects become their ``str`` so that writing a config never fails.
  """
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, int):
    return int(value)
  if isinstance(value, float):
    return value
  if hasattr(value, "to_dict") and callable(value.to_dict):  # ml_collections.ConfigDict
    return to_json_value(value.to_dict())
  if isinstance(value, Mapping):
    return {str(k): to_json_value(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, set, frozenset)):
    return [to_json_value(v) for v in value]
  dtype = getattr(value, "dtype", None)
  shape = getattr(value, "shape", None)
  if dtype is not None and shape is not None:  # numpy / jax arrays and scalars
    if tuple(shape) == ():
      kind = getattr(dtype, "kind", "f")
      if kind == "b":
        return bool(value)
      if kind in "iu":
        return int(value)
      return float(value)
    return [to_json_value(v) for v in value.tolist()] if hasattr(value, "tolist") else str(value)
  return str(value)


def is_finite(value: float) -> bool:
  """True unless ``value`` is NaN or +-inf."""
  return math.isfinite(value)


class NullWriter:
  """Accepts every call and does nothing (process != 0, or a sink that is switched off)."""

  run_id: str | None = None

  def write_config(self, config: Mapping[str, Any]) -> None:
    del config

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    del step, scalars

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    del summary

  def close(self) -> None:
    pass


class MultiWriter:
  """Fans every call out to several writers.

  Every writer gets every call even when an earlier one raises; the first exception is then
  re-raised, so a failing sink is loud but does not starve the others.
  """

  def __init__(self, writers: Iterable[MetricWriter]):
    self.writers: list[MetricWriter] = list(writers)

  @property
  def run_id(self) -> str | None:
    """The W&B run id of the first sink that has one (for checkpointing and resume)."""
    for writer in self.writers:
      run_id = getattr(writer, "run_id", None)
      if run_id:
        return run_id
    return None

  def _call(self, method: str, *args: Any) -> None:
    error: BaseException | None = None
    for writer in self.writers:
      try:
        getattr(writer, method)(*args)
      except Exception as e:  # pylint: disable=broad-except
        error = error or e
    if error is not None:
      raise error

  def write_config(self, config: Mapping[str, Any]) -> None:
    self._call("write_config", config)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    self._call("write_scalars", step, scalars)

  def write_summary(self, summary: Mapping[str, Any]) -> None:
    self._call("write_summary", summary)

  def close(self) -> None:
    self._call("close")
