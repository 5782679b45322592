"""Statistics against hand-computed numbers, and the bootstrap's determinism and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mnv2_jax.results import pareto
from mnv2_jax.results import stats

T_975_DF3 = 3.182446305284263  # Student t quantile 0.975 with 3 degrees of freedom (tables)
T_975_DF1 = 12.706204736174704


def test_summarize_hand_computed():
  s = stats.summarize([1.0, 2.0, 3.0, 4.0])
  assert s.n == 4 and s.mean == 2.5
  assert s.std == pytest.approx(math.sqrt(5 / 3))          # sum of squares 5, ddof 1
  assert s.ci_half == pytest.approx(T_975_DF3 * math.sqrt(5 / 3) / 2)   # = 2.0543
  assert s.ci_half == pytest.approx(2.05426, abs=1e-5)
  assert s.ci == pytest.approx((2.5 - s.ci_half, 2.5 + s.ci_half))
  two = stats.summarize([70.0, 72.0])
  assert two.std == pytest.approx(math.sqrt(2)) and two.ci_half == pytest.approx(
      T_975_DF1 * math.sqrt(2) / math.sqrt(2))


def test_summarize_edge_cases():
  one = stats.summarize([71.0])
  assert one.n == 1 and one.mean == 71.0 and math.isnan(one.std) and math.isnan(one.ci_half)
  assert stats.summarize([]).n == 0
  with pytest.raises(ValueError):
    stats.summarize([1.0, float("nan")])


def test_bootstrap_is_deterministic_and_covers_the_true_delta():
  true_delta = -0.5
  noise = np.array([0.12, -0.08, 0.05, -0.11, 0.02, 0.09, -0.04, -0.06, 0.1, -0.09])
  deltas = true_delta + noise  # mean exactly -0.5
  a = stats.bootstrap_ci(deltas)
  assert a == stats.bootstrap_ci(deltas)                 # fixed RNG: identical
  assert a[0] < true_delta < a[1] and a[1] < 0           # covers the truth, excludes 0
  assert a != stats.bootstrap_ci(deltas, seed=1)         # the seed is really used
  assert stats.bootstrap_ci([0.3, 0.3, 0.3]) == pytest.approx((0.3, 0.3))
  assert stats.bootstrap_ci([0.7]) == (0.7, 0.7)


def test_paired_delta_pairs_by_seed():
  base = {0: 70.0, 1: 71.0, 2: 72.0, 3: 50.0}
  other = {0: 69.5, 1: 70.0, 2: 71.0, 9: 99.0}            # seeds 3 and 9 are unpaired
  d = stats.paired_delta(base, other)
  assert d.seeds == (0, 1, 2) and d.deltas == (-0.5, -1.0, -1.0)
  assert d.summary.mean == pytest.approx(-2.5 / 3)
  # Resampled means: -1 with probability (2/3)^3 = 30%, -0.5 with (1/3)^3 = 3.7% > 2.5%.
  assert d.bootstrap == pytest.approx((-1.0, -0.5))
  assert stats.paired_delta({0: 1.0}, {1: 2.0}) is None


def test_pareto_frontier_on_constructed_points():
  points = [(10, 50), (20, 60), (15, 45), (30, 59), (40, 70), (40, 65), (5, 40), (20, 60)]
  assert pareto.frontier(points) == [6, 0, 1, 4]
  assert pareto.frontier([]) == []
  assert pareto.frontier([(1, 1), (1, 2)]) == [1]          # same cost: the better one only
