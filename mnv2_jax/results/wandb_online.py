"""Collecting a sweep's runs from the W&B server (``wandb.Api``) instead of a sweep dir.

For runs trained elsewhere (a cluster whose workdirs are not mounted here) and synced to W&B.
NOT TESTED in this repository: ``wandb.Api`` needs a server and credentials, and there is no
docker-free local server (shared/reference/ecosystem.md §1.7). The mapping from W&B fields to
``RunRecord`` mirrors ``collect._from_wandb`` (which is tested on offline runs): the run's
metric is its summary's ``metric`` ("top1" when absent), its curve ``eval/<metric>``.
"""

from __future__ import annotations

from mnv2_jax import ablations
from mnv2_jax.results import collect


def _agg(value, key: str):
  """W&B keeps max/last of eval metrics as {"max": .., "last": ..} in the summary."""
  return value.get(key) if isinstance(value, dict) else None


def collect_online(project: str, group: str, entity: str | None = None,
                   job_type: str = "train") -> list[collect.RunRecord]:
  """Every ``job_type`` run of ``group`` in ``entity/project`` as RunRecords."""
  import wandb  # pylint: disable=g-import-not-at-top

  api = wandb.Api()
  path = f"{entity}/{project}" if entity else project
  records = []
  for run in api.runs(path, filters={"group": group, "jobType": job_type}):
    config, summary = dict(run.config), dict(run.summary)
    model, inp = config.get("model", {}), config.get("input", {})
    metric = summary.get("metric") or collect.TOP1
    key = f"eval/{metric}"
    top1, top5 = summary.get("eval/top1", {}), summary.get("eval/top5", {})
    curve = tuple((int(row["_step"]), float(row[key]))
                  for row in run.scan_history(keys=["_step", key]))
    last = summary.get(key)  # a number: W&B aggregates only eval/top1 and eval/top5
    dense = {} if metric == collect.TOP1 else {
        # pylint: disable-next=protected-access
        "final_metric": summary.get("final_metric", collect._last_of(last)),
        "best_metric": summary.get("best_metric", max((v for _, v in curve), default=None))}
    records.append(collect.RunRecord(
        name=run.name, workdir=run.url,
        status="finished" if run.state == "finished" else run.state, source="wandb-online",
        model=model["name"], width=float(model["width_multiplier"]),
        resolution=int(inp["resolution"]), seed=int(config["seed"]),
        axes=ablations.values_of(model["name"], model), settings=collect.settings_of(config),
        dataset=inp.get("dataset"),
        madds=summary.get("madds"), params=summary.get("params"),
        final_top1=summary.get("final/top1", _agg(top1, "last")),
        final_top5=summary.get("final/top5", _agg(top5, "last")),
        best_top1=summary.get("best/top1", _agg(top1, "max")),
        best_top5=summary.get("best/top5", _agg(top5, "max")),
        wall_time_s=summary.get("wall_time_s"), group=group, curve=curve,
        task=summary.get("task") or collect.CLASSIFICATION, metric_name=metric, **dense))
  return records
