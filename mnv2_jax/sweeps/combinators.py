"""Sweep combinators: small, plain-Python building blocks that expand into lists of overrides.

The vocabulary mirrors the `hyper.sweep/product/zipit/chainit/fixed` API that big_vision and
scenic configs use (shared/design/anchors_style.md §1.4, §7.3), implemented here so it runs.

Every combinator returns a plain ``list[dict[str, Any]]``: one dict per run, mapping a dotted
config path to the value it is overridden with. Keys are written WITHOUT the ``config.``
prefix (``"model.shortcut"``, not ``"config.model.shortcut"``); a leading ``config.`` is
accepted and stripped, so both spellings mean the same thing. The ``config.`` prefix only
appears where a tool needs it: command lines (``--config.model.shortcut=none``) and W&B sweep
parameter names.

    product(sweep("model.shortcut", ["bottleneck", "none"]), sweep("seed", [0, 1]))
    == [{"model.shortcut": "bottleneck", "seed": 0}, {"model.shortcut": "bottleneck", "seed": 1},
        {"model.shortcut": "none", "seed": 0}, {"model.shortcut": "none", "seed": 1}]

Order is deterministic (the first factor varies slowest), so run lists, names and command files
are reproducible.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Overrides = dict[str, Any]
PREFIX = "config."


def normalize_key(key: str) -> str:
  """``"config.model.shortcut"`` / ``"model.shortcut"`` -> ``"model.shortcut"`` (validated)."""
  if not isinstance(key, str) or not key:
    raise ValueError(f"sweep keys must be non-empty strings, got {key!r}")
  if key.startswith(PREFIX):
    key = key[len(PREFIX):]
  parts = key.split(".")
  if not all(p.isidentifier() for p in parts):
    raise ValueError(f"sweep key {key!r} is not a dotted path of identifiers")
  return key


def _check_value(key: str, value: Any) -> Any:
  """Values must be what a ``--config.k=v`` flag can carry: scalars or tuples of scalars."""
  scalar = (bool, int, float, str)
  if isinstance(value, list):
    value = tuple(value)  # Lists cannot be overridden by ml_collections; tuples can.
  if isinstance(value, tuple):
    if not all(isinstance(v, scalar) for v in value):
      raise ValueError(f"{key}: tuple values must hold scalars, got {value!r}")
  elif value is not None and not isinstance(value, scalar):
    raise ValueError(f"{key}: unsupported override value {value!r} ({type(value).__name__})")
  return value


def sweep(key: str, values: Iterable[Any]) -> list[Overrides]:
  """One run per value of ``key``."""
  key = normalize_key(key)
  values = list(values)
  if not values:
    raise ValueError(f"sweep({key!r}) has no values")
  return [{key: _check_value(key, v)} for v in values]


def fixed(overrides: Mapping[str, Any] | None = None, /, **kv: Any) -> list[Overrides]:
  """A single run setting every given key (dict and/or keyword form).

  Keyword names cannot contain dots, so ``fixed(seed=0)`` works but nested paths need the dict
  form: ``fixed({"train.num_epochs": 12})``. Double underscores in keywords are read as dots
  (``fixed(train__num_epochs=12)``).
  """
  merged: Overrides = {}
  for key, value in list((overrides or {}).items()) + list(kv.items()):
    key = normalize_key(key.replace("__", "."))
    if key in merged:
      raise ValueError(f"fixed(): key {key!r} given twice")
    merged[key] = _check_value(key, value)
  return [merged]


def _merge(dicts: Sequence[Overrides]) -> Overrides:
  out: Overrides = {}
  for d in dicts:
    clash = set(out) & set(d)
    if clash:
      raise ValueError(f"the same key is set by two combined sweeps: {sorted(clash)}")
    out.update(d)
  return out


def product(*sweeps: Sequence[Overrides]) -> list[Overrides]:
  """Cartesian product; the first argument varies slowest. Keys must not overlap."""
  if not sweeps:
    return [{}]
  return [_merge(combo) for combo in itertools.product(*sweeps)]


def zipit(*sweeps: Sequence[Overrides]) -> list[Overrides]:
  """Element-wise combination of equally long sweeps (``zip`` with a length check)."""
  lengths = {len(s) for s in sweeps}
  if len(lengths) > 1:
    raise ValueError(f"zipit() needs sweeps of equal length, got {[len(s) for s in sweeps]}")
  return [_merge(combo) for combo in zip(*sweeps)]


def chain(*sweeps: Sequence[Overrides]) -> list[Overrides]:
  """Concatenation: the runs of each sweep, one after the other."""
  return [dict(d) for s in sweeps for d in s]


def canonical(overrides: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
  """A hashable, order-independent form of one override dict (for set comparisons/dedupe)."""
  return tuple(sorted((normalize_key(k), tuple(v) if isinstance(v, list) else v)
                      for k, v in overrides.items()))
