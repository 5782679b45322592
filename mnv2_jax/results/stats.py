"""Statistics over seeds: mean, std, Student-t confidence intervals, paired bootstrap deltas.

Why both intervals for deltas: with the 2-3 seeds a sweep can afford, a percentile bootstrap
over seeds is too narrow (it can only recombine the few deltas observed; with 2 seeds it has 3
distinct means), while the paired t-interval accounts for the small sample but assumes normal
deltas. We report both and say how many seeds there were; neither means much below 3 seeds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as sp_stats

DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP = 10_000
DEFAULT_RNG_SEED = 0


@dataclasses.dataclass(frozen=True)
class Summary:
  """n, mean, sample std (ddof=1) and the t-interval half-width (NaN when n < 2)."""
  n: int
  mean: float
  std: float
  ci_half: float

  @property
  def ci(self) -> tuple[float, float]:
    return (self.mean - self.ci_half, self.mean + self.ci_half)


def summarize(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> Summary:
  """Mean, std and Student-t CI of ``values`` (NaN entries are an error, not skipped)."""
  x = np.asarray(list(values), dtype=np.float64)
  if x.size == 0:
    return Summary(0, math.nan, math.nan, math.nan)
  if not np.all(np.isfinite(x)):
    raise ValueError(f"non-finite values: {x.tolist()}")
  if x.size == 1:
    return Summary(1, float(x[0]), math.nan, math.nan)
  std = float(np.std(x, ddof=1))
  t = float(sp_stats.t.ppf(0.5 + confidence / 2, df=x.size - 1))
  return Summary(int(x.size), float(np.mean(x)), std, t * std / math.sqrt(x.size))


def bootstrap_ci(values: Sequence[float], confidence: float = DEFAULT_CONFIDENCE,
                 n_boot: int = DEFAULT_BOOTSTRAP, seed: int = DEFAULT_RNG_SEED
                 ) -> tuple[float, float]:
  """Percentile bootstrap CI of the mean (resampling the values with replacement).

  Deterministic: a fixed ``numpy.random.default_rng(seed)``. One value gives (v, v).
  """
  x = np.asarray(list(values), dtype=np.float64)
  if x.size == 0:
    return (math.nan, math.nan)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, x.size, size=(n_boot, x.size))
  means = x[idx].mean(axis=1)
  alpha = (1 - confidence) / 2
  lo, hi = np.quantile(means, [alpha, 1 - alpha])
  return (float(lo), float(hi))


@dataclasses.dataclass(frozen=True)
class PairedDelta:
  """``other - baseline`` per shared seed, summarised."""
  seeds: tuple[int, ...]
  deltas: tuple[float, ...]
  summary: Summary
  bootstrap: tuple[float, float]


def paired_delta(baseline: Mapping[int, float], other: Mapping[int, float],
                 confidence: float = DEFAULT_CONFIDENCE, n_boot: int = DEFAULT_BOOTSTRAP,
                 seed: int = DEFAULT_RNG_SEED) -> PairedDelta | None:
  """Per-seed differences ``other[s] - baseline[s]`` over the seeds both have (None if none)."""
  seeds = tuple(sorted(set(baseline) & set(other)))
  if not seeds:
    return None
  deltas = tuple(float(other[s]) - float(baseline[s]) for s in seeds)
  return PairedDelta(seeds, deltas, summarize(deltas, confidence),
                     bootstrap_ci(deltas, confidence, n_boot, seed))
