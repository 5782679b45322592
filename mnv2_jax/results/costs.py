"""The cost axes a result is read against: counted MAdds, and the measured latency and memory.

One declaration per axis, read by the result tables (`tables`: the measured columns) and the
Fig. 5 style plots and frontiers (`mnv2_jax.plots.fig5`). The measured ones come from a run's
`efficiency.json` (`mnv2-measure`; `collect.RunRecord.latency_ms` / `.peak_memory_bytes`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from mnv2_jax.results import collect


@dataclasses.dataclass(frozen=True)
class Cost:
  """A cost axis: `of(record)` in the axis' unit (None: the record does not have it)."""
  name: str
  column: str       # its column in tables and frontier rows
  label: str        # axis label
  title: str        # "Accuracy vs <title>"
  of: Callable[[collect.RunRecord], float | None]


COSTS = {c.name: c for c in (
    Cost("madds", "mmadds", "Multiply-Adds, Millions", "MAdds",
         lambda r: None if r.madds is None else r.madds / 1e6),
    Cost("latency", "latency_ms", "TF-Lite latency, ms (XNNPACK, float32, batch 1)", "latency",
         lambda r: r.latency_ms),
    Cost("memory", "peak_mem_mb", "Peak inference memory, MB (XLA temp, batch 1)",
         "peak memory",
         lambda r: None if r.peak_memory_bytes is None else r.peak_memory_bytes / 1e6),
)}
MEASURED = ("latency", "memory")


def get(name: str) -> Cost:
  """The cost called `name`, or ValueError naming the allowed ones."""
  if name not in COSTS:
    raise ValueError(f"cost must be one of {sorted(COSTS)}, got {name!r}")
  return COSTS[name]


def measured_present(records: Sequence[collect.RunRecord]) -> list[str]:
  """The measured costs some record has (none: tables and plots are as without them)."""
  return [c for c in MEASURED if any(COSTS[c].of(r) is not None for r in records)]
