"""Rendering and writing the claims (`results.claims`): claims.md, claims.csv, claims.json, W&B.

``claims.md`` has one summary table (one row per claim: its pooled row), then every per-point
row, then the statistics' definitions (`results.claims`'s docstring). The CSV and JSON hold all
rows (the ``scope`` column tells pooled from per-point rows). `log_claims` logs the rows as a
``wandb.Table`` (``results/claims``) and the one-line verdicts as the summary's ``claims``,
through `mnv2_jax.logging.WandbWriter` as the report run logs its other tables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from mnv2_jax.results import claims as claims_lib
from mnv2_jax.results import tables

SUMMARY_COLUMNS = ("claim", "paper_effect", "paper_source", "estimate", "ci_lo", "ci_hi", "n",
                   "verdict", "reason")
DETAIL_COLUMNS = ("claim", "scope", "estimate", "ci_lo", "ci_hi", "boot_lo", "boot_hi", "n",
                  "verdict", "reason")


def rows(claims: Sequence[claims_lib.Claim]) -> list[dict]:
  return [c.row() for c in claims]


def pooled(claims: Sequence[claims_lib.Claim]) -> list[claims_lib.Claim]:
  """One row per claim: its pooled row (or its only row)."""
  seen, out = set(), []
  for c in claims:
    if c.claim not in seen:
      seen.add(c.claim)
      out.append(c)
  return out


def sentence(c: claims_lib.Claim) -> str:
  """"linear > relu6: reproduces (+0.62 [+0.30, +0.94], n=3; paper +0.65, Fig. 6a ...)"."""
  if c.estimate is None:
    stat = "no data"
  elif c.ci_lo is None:
    stat = f"{c.estimate:+.2f}, n={c.n}, no CI"
  else:
    stat = f"{c.estimate:+.2f} [{c.ci_lo:+.2f}, {c.ci_hi:+.2f}], n={c.n}"
  paper = "paper: no number" if c.paper_effect is None else f"paper {c.paper_effect:+.2f}"
  return f"{c.claim}: {c.verdict} ({stat}; {paper}, {c.paper_source}) - {c.reason}"


def to_markdown(claims: Sequence[claims_lib.Claim], sources: Sequence[str], metric: str,
                margin: float) -> str:
  detail = [c for c in claims if c.scope != "pooled"]
  doc = claims_lib.__doc__.split("\n\n", 1)[1]
  return "\n".join([
      f"# The paper's claims against {', '.join(sources)}", "",
      f"{metric} top-1 (%), deltas in points, 95% Student-t CI over seeds (n = paired seeds); "
      f"equivalence margin ±{margin:g} points.", "",
      "## Verdicts", "", *[f"- {sentence(c)}" for c in pooled(claims)], "",
      "## Claims (pooled)", "", tables.to_markdown(rows(pooled(claims)), SUMMARY_COLUMNS),
      "## Per operating point", "", tables.to_markdown(rows(detail), DETAIL_COLUMNS),
      "## Definitions", "", doc])


def write(out: str, claims: Sequence[claims_lib.Claim], sources: Sequence[str], metric: str,
          margin: float) -> list[str]:
  """Writes claims.md, claims.csv and claims.json into `out`; returns their paths."""
  os.makedirs(out, exist_ok=True)
  texts = {"claims.md": to_markdown(claims, sources, metric, margin),
           "claims.csv": tables.to_csv(rows(claims)),
           "claims.json": json.dumps({"metric": metric, "margin": margin,
                                      "sources": list(sources), "claims": rows(claims)},
                                     indent=1, allow_nan=False, default=str) + "\n"}
  paths = []
  for name, text in texts.items():
    path = os.path.join(out, name)
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
    paths.append(path)
  return paths


def log_claims(writer, claims: Sequence[claims_lib.Claim]) -> None:
  """Logs the claims table and verdict sentences to a `WandbWriter`."""
  if not claims:
    return
  columns = list(claims[0].row())
  writer.log_table("results/claims", columns, [[r[c] for c in columns] for r in rows(claims)])
  writer.write_summary({"claims": [sentence(c) for c in pooled(claims)],
                        "claim_verdicts": {c.claim: c.verdict for c in pooled(claims)}})
