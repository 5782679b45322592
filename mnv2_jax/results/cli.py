"""`mnv2-results`: tables of a sweep's runs, seed aggregates and paired deltas (CSV + Markdown).

    mnv2-results runs/sweeps/fig6a_nonlinearity+fig6b_shortcut.digits
    mnv2-results SWEEP_DIR --out results/ --metric best
    mnv2-results SWEEP_DIR --baseline shortcut=expansion   # deltas against another baseline
    mnv2-results SWEEP_DIR [SWEEP_DIR ...] --claims        # + claims.md: the paper's claims

`mnv2-report` writes these tables, the plots and a W&B report run in one go.

Writes ``runs``, ``aggregate`` and ``deltas`` as ``.csv`` and ``.md`` plus ``report.md``
(all tables and the delta sentences) into ``--out`` (default ``SWEEP_DIR/results``), and prints
``report.md``. Several sweep dirs are read together (their runs pooled; outputs default to
the first one's ``results``). With ``--claims``, also ``claims.md``/``.csv``/``.json``: the
paper's ablation claims with the paper's effect, our statistic, CI, n and a verdict
(`mnv2_jax.results.claims`), logged to W&B too unless ``--wandb_mode=disabled`` (the default
here; `mnv2-report` logs them into its report run). Exit code 1 if the sweep dirs hold no runs.

Each run is scored by its own metric (top-1, or the mAP / mIoU of detection / segmentation
runs, from its summary). Runs of different metrics are never averaged or compared: each
metric gets its own tables, named with the metric as suffix (``aggregate_mAP.csv``; top-1's keep
their names, `collect.metric_suffix`), and its own section of ``report.md``. The paper's claims
are about top-1 and are tested on the top-1 runs only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mnv2_jax import ablations
from mnv2_jax.results import claims as claims_lib
from mnv2_jax.results import claims_table
from mnv2_jax.results import collect
from mnv2_jax.results import stats
from mnv2_jax.results import tables


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-results", description=__doc__.split("\n\n")[0])
  p.add_argument("sweep_dir", nargs="+", help="one or more sweep dirs, read together")
  p.add_argument("--out", default=None, help="output dir (default: first SWEEP_DIR/results)")
  p.add_argument("--metric", choices=("final", "best"), default="final",
                 help="which value of the runs' metric (top-1, mAP, mIoU) the aggregates and "
                      "deltas use")
  p.add_argument("--baseline", default="", type=parse_baseline,
                 help="FIELD=VALUE,... of compute-neutral axes the deltas are taken against "
                      "(default: the declared baselines, mnv2_jax.ablations)")
  p.add_argument("--confidence", type=float, default=stats.DEFAULT_CONFIDENCE)
  p.add_argument("--bootstrap", type=int, default=stats.DEFAULT_BOOTSTRAP,
                 help="bootstrap resamples (fixed RNG seed 0)")
  p.add_argument("--claims", action="store_true",
                 help="also write claims.md/.csv/.json: the paper's claims and verdicts")
  p.add_argument("--margin", type=float, default=claims_lib.DEFAULT_MARGIN,
                 help="equivalence margin (points) of the expansion-rate claim")
  p.add_argument("--wandb_mode", default="disabled",
                 help="with --claims: log them to a W&B run (auto|online|offline|disabled)")
  return p.parse_args(list(argv))


def parse_baseline(text: str) -> dict[str, object]:
  """"shortcut=expansion" -> {"shortcut": "expansion"}, each checked against its axis."""
  out: dict[str, object] = {}
  neutral = {a.field: a for a in ablations.axes() if not a.changes_compute}
  for item in filter(None, text.split(",")):
    field, sep, value = item.partition("=")
    if not sep or field not in neutral:
      raise argparse.ArgumentTypeError(
          f"--baseline takes FIELD=VALUE with FIELD one of {sorted(neutral)}, got {item!r}")
    axis = neutral[field]
    try:
      out[field] = axis.check(axis.type(value) if axis.type is not str else value)
    except ValueError as e:
      raise argparse.ArgumentTypeError(str(e)) from e
  return out


def build(records, metric: str, baseline: str, confidence: float, n_boot: int):
  """(runs, aggregate, deltas) row lists of runs of one metric (ValueError if they mix)."""
  return (tables.run_rows(records),
          tables.aggregate_rows(records, metric, confidence),
          tables.delta_rows(records, metric, baseline, confidence, n_boot))


def build_by_metric(records, metric: str, baseline: str, confidence: float, n_boot: int):
  """{metric name: (runs, aggregate, deltas)}, each of that metric's runs (top-1 first)."""
  return {name: build(runs, metric, baseline, confidence, n_boot)
          for name, runs in collect.by_metric(records).items()}


def report_markdown(sweep_dir: str, runs, aggregate, deltas, metric: str,
                    name: str = collect.TOP1) -> str:
  """The report of one metric's tables (`name`; "top1" unless told)."""
  title = f"# Results of {sweep_dir}" + ("" if name == collect.TOP1 else f": {name}")
  parts = [title, "",
           f"{len(runs)} runs; aggregates and deltas over finished runs, {metric} "
           f"{collect.metric_label(name)} (%).", ""]
  if deltas:
    parts += ["## Paired comparisons", ""] + [f"- {d['sentence']}" for d in deltas] + [""]
  parts += ["## Aggregated over seeds (mean, sample std, 95% t-interval)", "",
            tables.to_markdown(aggregate), "## Deltas vs baseline (points)", "",
            tables.to_markdown([{k: v for k, v in d.items() if k != "sentence"}
                                for d in deltas]),
            "## Every run", "", tables.to_markdown(runs)]
  return "\n".join(parts)


def write_outputs(out: str, runs, aggregate, deltas, report: str | None,
                  suffix: str = "") -> list[str]:
  """Writes runs/aggregate/deltas{suffix}.csv and .md, and report.md unless `report` is None."""
  os.makedirs(out, exist_ok=True)
  paths = []
  for name, rows in (("runs", runs), ("aggregate", aggregate), ("deltas", deltas)):
    for ext, text in (("csv", tables.to_csv(rows)), ("md", tables.to_markdown(rows))):
      path = os.path.join(out, f"{name}{suffix}.{ext}")
      with open(path, "w", encoding="utf-8") as f:
        f.write(text)
      paths.append(path)
  if report is None:
    return paths
  path = os.path.join(out, "report.md")
  with open(path, "w", encoding="utf-8") as f:
    f.write(report)
  return paths + [path]


def manifest_preset(sweep_dirs: Sequence[str]) -> str | None:
  """The preset the sweep dirs were launched with (sweep.json), if they agree on one."""
  found = {collect.read_manifest(d).get("preset") for d in sweep_dirs} - {None}
  return found.pop() if len(found) == 1 else None


def build_claims(records, sweep_dirs: Sequence[str], metric: str, margin: float,
                 confidence: float, n_boot: int) -> list[claims_lib.Claim]:
  """The paper's claims (about top-1) over the top-1 runs; none if there are no top-1 runs."""
  top1 = collect.by_metric(records).get(collect.TOP1, [])
  if not top1:
    return []
  return claims_lib.claims(top1, metric, margin=margin, confidence=confidence,
                           n_boot=n_boot, preset=manifest_preset(sweep_dirs))


def log_claims(out: str, claims, records, mode: str) -> str | None:
  """A W&B run (job_type "report") holding the claims; returns its local run dir."""
  from mnv2_jax.logging import WandbWriter  # pylint: disable=g-import-not-at-top
  groups = sorted({r.group for r in records if r.group})
  group = groups[0] if len(groups) == 1 else os.path.basename(os.path.abspath(out))
  writer = WandbWriter(out, mode=mode, project="mnv2_jax", group=group, job_type="report",
                       name=f"{group}-claims", tags=["report", "claims"],
                       config={"runs": len(records)})
  claims_table.log_claims(writer, claims)
  run_dir = writer.run_dir
  writer.close()
  return run_dir


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  records = []
  for sweep_dir in args.sweep_dir:
    try:
      records += collect.collect(sweep_dir)
    except FileNotFoundError as e:
      print(f"mnv2-results: {e}", file=sys.stderr)
      return 1
  if not records:
    print(f"mnv2-results: no runs under {' '.join(args.sweep_dir)}", file=sys.stderr)
    return 1
  built = build_by_metric(records, args.metric, args.baseline, args.confidence, args.bootstrap)
  out = args.out or os.path.join(args.sweep_dir[0], "results")
  reports = []
  for name, (runs, aggregate, deltas) in built.items():
    reports.append(report_markdown(" + ".join(args.sweep_dir), runs, aggregate, deltas,
                                   args.metric, name))
    write_outputs(out, runs, aggregate, deltas, None, collect.metric_suffix(name))
  report = "\n".join(reports)
  with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
    f.write(report)
  print(report)
  claims = build_claims(records, args.sweep_dir, args.metric, args.margin, args.confidence,
                        args.bootstrap) if args.claims else []
  if args.claims and not claims:
    print("mnv2-results: no top-1 runs, so no claims: the paper's claims are about top-1",
          file=sys.stderr)
  elif args.claims:
    claims_table.write(out, claims, args.sweep_dir, args.metric, args.margin)
    print(claims_table.to_markdown(claims, args.sweep_dir, args.metric, args.margin))
    if args.wandb_mode != "disabled":
      print(f"# W&B claims run: {log_claims(out, claims, records, args.wandb_mode)}",
            file=sys.stderr)
  return 0


def run() -> None:
  """Console-script entry point."""
  sys.exit(main())


if __name__ == "__main__":
  run()
