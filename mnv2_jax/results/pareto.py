"""Pareto frontier of (cost, accuracy) points: fewer MAdds and higher top-1 are better."""

from __future__ import annotations

from collections.abc import Sequence


def frontier(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the non-dominated points, in increasing cost.

  A point is on the frontier if no other point has lower-or-equal cost and strictly higher
  accuracy, or strictly lower cost and equal accuracy. Of exact duplicates the first is kept.
  """
  order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
  out: list[int] = []
  best = float("-inf")
  for i in order:
    if points[i][1] > best:
      out.append(i)
      best = points[i][1]
  return out
