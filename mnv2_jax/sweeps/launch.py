"""`mnv2-sweep`: expand experiment files, validate every run, then run, list or export them.

    mnv2-sweep experiments/fig6a_nonlinearity.py experiments/fig6b_shortcut.py \
        --preset=digits --parallel=2                      # run locally, resumable
    mnv2-sweep experiments/fig5_pareto.py --preset=paper --dry_run      # print, run nothing
    mnv2-sweep experiments/fig5_pareto.py --preset=paper --emit=commands  # for a scheduler
    mnv2-sweep experiments/fig6b_shortcut.py --preset=imagenet_short --emit=wandb_yaml
    mnv2-sweep experiments/fig5_pareto.py --preset=paper --launcher=slurm \
        --slurm_partition=gpu --slurm_gpus_per_node=8 --slurm_time=1-00:00:00  # a job array
    mnv2-sweep experiments/fig5_pareto.py --preset=paper --status   # per-run state

Layout of a sweep dir (default ``runs/sweeps/<group>``): ``<run name>/`` per run (the trainer's
workdir: config.json, metrics.jsonl, summary.json, checkpoints, wandb/, launch.log),
``sweep.json`` (the manifest: runs, overrides, studies; read by mnv2-results/mnv2-plot),
``commands.txt`` and ``wandb_sweeps/<study>.yaml`` when emitted, ``slurm/`` for SLURM
(`mnv2_jax.sweeps.slurm`).

Every run is validated (config parsed by config_flags, model built) before anything starts;
runs shared by several studies run once. Re-running the same command resumes: finished runs are
skipped, interrupted or failed ones relaunched (the trainer resumes from its checkpoint); with
``--launcher=slurm`` runs still queued or running in SLURM are skipped too.
The W&B group of every run is ``--group`` (default ``<studies>.<preset>``). Once every run has
finished, ``--measure`` attaches measured latency and peak memory to each run's record
(`mnv2-measure`) and ``--report`` writes the tables, plots and W&B report run (`mnv2-report`).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence

import yaml

from mnv2_jax.sweeps import combinators as C
from mnv2_jax.sweeps import compute
from mnv2_jax.sweeps import plan as plan_lib
from mnv2_jax.sweeps import presets
from mnv2_jax.sweeps import runner
from mnv2_jax.sweeps import slurm
from mnv2_jax.sweeps import status as status_lib
from mnv2_jax.sweeps import studies as studies_lib
from mnv2_jax.sweeps import wandb_yaml

EMITS = ("commands", "wandb_yaml", "slurm")
LAUNCHERS = ("local", "slurm")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-sweep", description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("studies", nargs="+", help="experiment files (experiments/<study>.py)")
  p.add_argument("--preset", required=True,
                 help=f"NAME[:ARG], NAME in {sorted(presets.PRESETS)}; ARG goes to the config")
  p.add_argument("--seeds", type=int, default=None, help="number of seeds (preset default)")
  p.add_argument("--sweep_dir", default=None, help="default: runs/sweeps/<group>")
  p.add_argument("--group", default=None, help="W&B group (default <studies>.<preset>)")
  p.add_argument("--launcher", choices=LAUNCHERS, default="local",
                 help="local: subprocesses here (--parallel); slurm: one job array")
  p.add_argument("--parallel", type=int, default=1, help="local runs at a time")
  p.add_argument("--status", action="store_true",
                 help="print each run's state (and SLURM's view of it); run nothing")
  p.add_argument("--dry_run", action="store_true", help="print the plan; run nothing")
  p.add_argument("--emit", choices=EMITS, default=None,
                 help="write commands.txt, W&B sweep YAMLs or the SLURM batch script into "
                      "the sweep dir; run nothing")
  p.add_argument("--only", default=None, help="only runs whose name matches this regex")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="extra override for every run (repeatable), e.g. "
                      "--set input.data_dir=/data/tfds or --set train.num_steps=20 for a smoke "
                      "test; VALUE is read as YAML (1 -> int, 1.0 -> float, true -> bool)")
  p.add_argument("--report", action="store_true",
                 help="after the local runs: write the results tables (mnv2-results), the "
                      "plots (mnv2-plot) and a W&B report run, and say where everything is")
  p.add_argument("--measure", action="store_true",
                 help="after the runs (before --report): attach each finished run's measured "
                      "TF-Lite latency and XLA peak memory to its record (mnv2-measure, 1 "
                      "thread; runs already measured are skipped)")
  p.add_argument("--trainer", default=None,
                 help="trainer command prefix (default: this python -m mnv2_jax.main); "
                      "e.g. a wrapper script")
  slurm.add_flags(p)
  return p.parse_args(list(argv))


def parse_sets(items: Sequence[str]) -> dict:
  """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values typed as YAML scalars)."""
  out = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep:
      raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
    try:
      typed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
      typed = value
    if typed is None or isinstance(typed, dict):
      typed = value  # "null"/"{...}" are taken literally; ml_collections parses the string.
    out.update(C.fixed({key: typed})[0])
  return out


def with_sets(study: studies_lib.Study, sets: dict) -> studies_lib.Study:
  """The study with ``sets`` added to (and overriding) every run's overrides."""
  if not sets:
    return study
  runs = tuple({**{k: v for k, v in r.items() if k not in sets}, **sets} for r in study.runs)
  return dataclasses.replace(study, runs=runs)


def default_group(studies: Sequence[studies_lib.Study], preset: str) -> str:
  names = "+".join(s.name for s in studies)
  return f"{names}.{preset.replace(':', '_').replace('/', '-').replace(',', '_')}"


def _estimate(plan: plan_lib.Plan, preset: str) -> str:
  est = compute.estimate([r.config for r in plan.runs],
                         presets.parse_preset(preset)[0].train_images)
  return est.describe() if est else "compute estimate unavailable (dataset size unknown)"


def emit_wandb_yamls(plan: plan_lib.Plan, sweep_dir: str, names: set[str]) -> list[str]:
  """Writes one W&B sweep YAML per study (runs filtered to ``names``); returns the paths."""
  out_dir = os.path.join(sweep_dir, "wandb_sweeps")
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for study in plan.studies:
    runs = [r for r in plan.runs if study.name in r.studies and r.name in names]
    if not runs:
      continue
    doc = wandb_yaml.to_doc(
        study=study.name, base_config=study.base_config, runs=[r.overrides for r in runs],
        sweep_dir=sweep_dir, group=plan.group, tags=[study.name, study.preset.split(":")[0]],
        name_keys=plan.name_keys)
    path = os.path.join(out_dir, f"{study.name}.yaml")
    with open(path, "w", encoding="utf-8") as f:
      f.write(wandb_yaml.dump(doc))
    paths.append(path)
  return paths


def prepare_datasets(runs: Sequence[plan_lib.Run]) -> None:
  """Prepares, once each, every dataset ``runs`` read, before any of them starts.

  One call per distinct (dataset, data_dir, manual_dir) of the resolved configs. The runs would
  prepare on first use too (safely, see ``mnv2_jax.data.publish``), but N parallel runs would
  each do the full work, and a dataset that cannot be prepared would fail every run separately.

  Raises:
    mnv2_jax.data.DatasetNotPreparedError: a dataset cannot be prepared (with instructions).
  """
  from mnv2_jax import data  # pylint: disable=g-import-not-at-top  # tfds: only when launching
  from mnv2_jax.data import options  # pylint: disable=g-import-not-at-top
  distinct = {}
  for run in runs:
    opts = options.from_config(run.config.input)
    distinct.setdefault((opts.dataset, opts.data_dir, opts.manual_dir), opts)
  for (dataset, data_dir, manual_dir), opts in distinct.items():
    if opts.is_synthetic:
      continue
    print(f"# preparing {dataset} (data_dir={data_dir or 'tfds default'}"
          f"{f', manual_dir={manual_dir}' if manual_dir else ''})", file=sys.stderr, flush=True)
    data.prepare(opts)


def write_manifest(plan: plan_lib.Plan, sweep_dir: str) -> str:
  """Writes ``sweep.json``, keeping runs an earlier invocation listed (e.g. with --only)."""
  os.makedirs(sweep_dir, exist_ok=True)
  path = os.path.join(sweep_dir, plan_lib.MANIFEST)
  manifest = plan.to_manifest(sweep_dir)
  if os.path.exists(path):
    try:
      with open(path, encoding="utf-8") as f:
        old = json.load(f)
    except (OSError, json.JSONDecodeError):
      old = {}
    names = {r["name"] for r in manifest["runs"]}
    manifest["runs"] = [r for r in old.get("runs", []) if r.get("name") not in names] + \
        manifest["runs"]
    studies = {s["name"] for s in manifest["studies"]}
    manifest["studies"] = [s for s in old.get("studies", []) if s.get("name") not in studies] \
        + manifest["studies"]
  with open(path, "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=2, default=list)
    f.write("\n")
  return path


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:  # Everything is validated before the sweep dir is created (see the module docstring).
    if args.parallel < 1:
      raise ValueError(f"--parallel must be an integer >= 1, got {args.parallel}")
    if args.measure and args.emit:
      raise ValueError(f"--measure runs after the runs finish, so it does not apply with "
                       f"--emit={args.emit}; run `mnv2-measure SWEEP_DIR` once they have")
    if args.only is not None:
      try:
        re.compile(args.only)
      except re.error as e:
        raise ValueError(f"--only must be a Python regular expression: {e}") from e
    sets = parse_sets(args.set)
    studies = [with_sets(studies_lib.load(p, args.preset, seeds=args.seeds), sets)
               for p in args.studies]
    slurm_opts = None
    given = slurm.flags_given(args)
    if given and not (args.launcher == "slurm" or args.emit == "slurm"):
      raise ValueError(f"{', '.join(given)} only apply with --launcher=slurm or --emit=slurm")
    if args.launcher == "slurm" or args.emit == "slurm":
      slurm_opts = slurm.options_from_args(args)
      if args.launcher == "slurm" and not (args.emit or args.dry_run or args.status):
        slurm.check_reachable(slurm_opts)   # sbatch on PATH, the partition known to sinfo
  except (OSError, ValueError, AttributeError) as e:
    print(f"mnv2-sweep: {e}", file=sys.stderr)
    return 2
  group = args.group or default_group(studies, args.preset)
  sweep_dir = args.sweep_dir or os.path.join("runs", "sweeps", group)
  try:
    plan = plan_lib.build_plan(studies, group)
  except plan_lib.PlanError as e:
    print(f"mnv2-sweep: {e}", file=sys.stderr)
    return 2
  if args.only:
    plan.runs = [r for r in plan.runs if re.search(args.only, r.name)]
  if args.status:
    print(status_lib.render(status_lib.sweep_states(
        sweep_dir, {r.name: plan.run_dir(sweep_dir, r) for r in plan.runs})))
    return 0
  status = {r.name: runner.run_status(plan.run_dir(sweep_dir, r)) for r in plan.runs}
  counts = collections.Counter(status.values())
  print(f"# sweep {group}: {len(plan.runs)} runs in {sweep_dir} "
        f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}); "
        f"{sum(len(s.runs) for s in studies)} requested by {len(studies)} studies",
        file=sys.stderr)
  print(f"# {_estimate(plan, args.preset)}", file=sys.stderr)

  if args.emit == "commands":
    os.makedirs(sweep_dir, exist_ok=True)
    commands = plan.commands(sweep_dir)
    with open(os.path.join(sweep_dir, "commands.txt"), "w", encoding="utf-8") as f:
      f.write("\n".join(commands) + "\n")
    write_manifest(plan, sweep_dir)
    print("\n".join(commands))
    return 0
  if args.emit == "wandb_yaml":
    write_manifest(plan, sweep_dir)
    for path in emit_wandb_yamls(plan, sweep_dir, {r.name for r in plan.runs}):
      print(f"{path}\n  wandb sweep {path}   # then: wandb agent <entity/project/sweep_id>")
    return 0

  trainer = shlex.split(args.trainer) if args.trainer else plan_lib.default_trainer()
  if slurm_opts is not None:
    return _slurm(plan, sweep_dir, trainer, slurm_opts, args)
  jobs = [runner.Job(r.name, r.argv(plan.run_dir(sweep_dir, r), group, trainer),
                     plan.run_dir(sweep_dir, r))
          for r in plan.launch_order() if status[r.name] != runner.FINISHED]
  if args.dry_run:
    for r in plan.runs:
      line = shlex.join(r.argv(plan.run_dir(sweep_dir, r), group, trainer))
      print(f"# {r.name}: {status[r.name]} -> skip" if status[r.name] == runner.FINISHED
            else line)
    return 0
  if jobs:
    from mnv2_jax.data import DatasetNotPreparedError  # pylint: disable=g-import-not-at-top
    try:
      prepare_datasets([r for r in plan.runs if status[r.name] != runner.FINISHED])
    except (DatasetNotPreparedError, OSError) as e:
      print(f"mnv2-sweep: {e}\n# no run was launched", file=sys.stderr)
      return 2
  write_manifest(plan, sweep_dir)
  failed = []
  if jobs:
    print(f"# launching {len(jobs)} runs ({args.parallel} at a time)", file=sys.stderr)
    done = runner.execute(jobs, parallel=args.parallel)
    failed = [j for j in done if not (j.returncode == 0 and j.status == runner.FINISHED)]
    for job in failed:
      print(f"# FAILED {job.name}: exit {job.returncode}, status {job.status}, see "
            f"{os.path.join(job.workdir, runner.LOG)}", file=sys.stderr)
    print(f"# {len(done) - len(failed)}/{len(done)} runs finished", file=sys.stderr)
  else:
    print("# every run is already finished", file=sys.stderr)
  if failed:
    return 1
  return _finish(sweep_dir, args)


def _slurm(plan: plan_lib.Plan, sweep_dir: str, trainer: list[str], opts: slurm.Options,
           args: argparse.Namespace) -> int:
  """--launcher=slurm / --emit=slurm: the runs to (re)start as one job array."""
  workdirs = {r.name: plan.run_dir(sweep_dir, r) for r in plan.runs}
  states = {s.name: s for s in status_lib.sweep_states(sweep_dir, workdirs)}
  todo = [r for r in plan.launch_order()
          if states[r.name].state != "finished" and not states[r.name].live]
  for name, s in states.items():
    if s.live:
      print(f"# {name}: {s.state} in SLURM (job {s.task.job_id}_{s.task.index}) -> skip",
            file=sys.stderr)
  multihost = ["--multihost"] if opts.processes > 1 else []
  tasks = [slurm.ArrayTask(r.name, os.path.abspath(workdirs[r.name]),
                           [*r.argv(os.path.abspath(workdirs[r.name]), plan.group, trainer),
                            *multihost]) for r in todo]
  if not tasks:
    print("# every run is finished or already in SLURM's queue", file=sys.stderr)
    return _finish(sweep_dir, args) if all(
        s.state == "finished" for s in states.values()) else 0
  script = slurm.render_script(
      tasks, opts, job_name=f"mnv2:{plan.group}",
      log_dir=os.path.abspath(os.path.join(slurm.slurm_dir(sweep_dir), "logs")),
      cwd=os.getcwd())
  if args.dry_run:
    print(script)
    return 0
  if args.emit != "slurm":
    from mnv2_jax.data import DatasetNotPreparedError  # pylint: disable=g-import-not-at-top
    try:
      prepare_datasets(todo)
    except (DatasetNotPreparedError, OSError) as e:
      print(f"mnv2-sweep: {e}\n# nothing was submitted", file=sys.stderr)
      return 2
  write_manifest(plan, sweep_dir)
  path = slurm.write_script(sweep_dir, script)
  if args.emit == "slurm":
    print(f"{path}\n  sbatch {path}   # {len(tasks)} runs; then: mnv2-sweep ... --status")
    return 0
  try:
    job_id = slurm.submit(sweep_dir, path, tasks)
  except slurm.SlurmError as e:
    print(f"mnv2-sweep: {e}", file=sys.stderr)
    return 1
  print(f"# submitted {len(tasks)} runs as job array {job_id} ({path}); see them with "
        "`mnv2-sweep ... --status`", file=sys.stderr, flush=True)
  if not (args.slurm_wait or args.report or args.measure):
    return 0
  slurm.wait(job_id)
  final = status_lib.sweep_states(sweep_dir, workdirs)
  print(status_lib.render(final), file=sys.stderr)
  if any(s.state != "finished" for s in final):
    return 1
  return _finish(sweep_dir, args)


def _finish(sweep_dir: str, args: argparse.Namespace) -> int:
  """After every run finished: `--measure`, then `--report`, as asked."""
  if args.measure:
    from mnv2_jax.export import measure_cli  # pylint: disable=g-import-not-at-top
    rc = measure_cli.main([sweep_dir])
    if rc:
      return rc
  return _report(sweep_dir) if args.report else 0


def _report(sweep_dir: str) -> int:
  """Tables, plots and a W&B report run for a finished sweep; prints where they are."""
  from mnv2_jax.report import cli as report_cli  # pylint: disable=g-import-not-at-top
  rc = report_cli.main([sweep_dir])
  if rc == 0:
    print(f"\n# results tables: {os.path.join(sweep_dir, 'results')} (report.md, *.csv)\n"
          f"# plots:          {os.path.join(sweep_dir, 'plots')} (fig5, fig6_*, along_* .png + .svg)\n"
          f"# W&B (offline):  {os.path.join(sweep_dir, '<run>', 'wandb')}; upload with "
          f"`wandb sync {os.path.join(sweep_dir, '*', 'wandb', 'offline-run-*')}`")
  return rc


def run() -> None:
  """Console-script entry point."""
  sys.exit(main())


if __name__ == "__main__":
  run()
