"""The real W&B client in offline mode, read back from disk: what W&B *recorded*.

One run (module fixture) is logged through ``create_writers`` exactly as the trainer will,
then read back with W&B's own reader (``wandb leet inspect``) and with the built-in
transaction-log parser; both must agree. No API key, no network (see conftest.py).
"""

from __future__ import annotations

import glob
import json
import os

import pytest

from mnv2_jax.logging import factory
from mnv2_jax.logging import jsonl
from mnv2_jax.logging import wandb_reader
from mnv2_jax.logging import wandb_writer

CONFIG = {
    "model": {"width_mult": 0.5, "use_residual": True, "activation": "relu6"},
    "input": {"resolution": 160},
    "seed": 0,
    "madds": 97_000_000,
    "params": 1_950_000,
}
TRAIN = {10: {"train/loss": 2.5, "train/top1": 0.125},
         20: {"train/loss": 2.0, "train/top1": 0.25, "train/images_per_sec": 512.0},
         30: {"train/loss": 1.5, "train/top1": 0.375}}
EVAL = {20: {"eval/top1": 0.40, "eval/top5": 0.70},
        30: {"eval/top1": 0.35, "eval/top5": 0.72}}
SUMMARY = {"top1": 0.40, "top5": 0.72, "final/top1": 0.35, "madds": 97_000_000,
           "params": 1_950_000, "wall_time_s": 12.5}


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
  """Logs one run via create_writers (WANDB_MODE=offline, mode auto); returns its facts."""
  root = tmp_path_factory.mktemp("offline")
  workdir = str(root / "workdir")
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("WANDB_MODE", "offline")
    mp.setenv("WANDB_DIR", str(root / "wandb_dir"))
    cfg = factory.default_wandb_config()
    cfg.group = "width_sweep"
    cfg.tags = ("mnv2", "width_0.5")
    writer = factory.create_writers(workdir, cfg, config_dict=CONFIG, process_index=0)
    wb = writer.writers[1]
    assert wb.mode == "offline" and wb.active
    for step in (10, 20, 30):
      writer.write_scalars(step, TRAIN[step])
      if step in EVAL:
        writer.write_scalars(step, EVAL[step])
    writer.write_summary(SUMMARY)
    run_id = writer.run_id
    writer.close()
  return {"workdir": workdir, "run_id": run_id, "run": wandb_reader.read_offline_run(workdir)}


def test_read_back_uses_the_official_cli(logged):
  run = logged["run"]
  assert run["reader"] == "cli"
  assert run["run_id"] == logged["run_id"]
  assert run["finished"] and run["exit_code"] == 0
  assert run["run_dir"].startswith(os.path.join(logged["workdir"], "wandb", "offline-run-"))


def test_config_includes_madds_params_and_switches(logged):
  assert logged["run"]["config"] == CONFIG


def test_history_has_scalars_at_the_right_steps(logged):
  history = logged["run"]["history"]
  assert [row["_step"] for row in history] == [10, 20, 30]
  for row in history:
    step = row["_step"]
    expected = {**TRAIN[step], **EVAL.get(step, {})}
    assert {k: v for k, v in row.items() if not k.startswith("_")} == expected


def test_summary_has_best_eval_top1_and_pareto_fields(logged):
  summary = logged["run"]["summary"]
  assert summary["eval/top1"] == {"max": 0.40, "last": 0.35}  # define_metric max,last.
  assert summary["eval/top5"] == {"max": 0.72, "last": 0.72}
  for key, value in SUMMARY.items():
    assert summary[key] == value
  assert summary["_step"] == 30


def test_group_job_type_tags_project(logged):
  run = logged["run"]
  assert run["group"] == "width_sweep"
  assert run["job_type"] == "train"
  assert run["tags"] == ["mnv2", "width_0.5"]
  assert run["project"] == "mnv2_jax"


def test_builtin_parser_agrees_with_cli(logged):
  parsed = wandb_reader.read_offline_run(logged["workdir"], reader="parser")
  cli = dict(logged["run"])
  assert parsed.pop("reader") == "parser" and cli.pop("reader") == "cli"
  assert parsed == cli


def test_auto_reader_falls_back_to_parser_when_cli_fails(logged, monkeypatch):
  monkeypatch.setattr(wandb_reader, "_wandb_cli", lambda: ["false"])
  with pytest.raises(RuntimeError, match="exited 1"):
    wandb_reader.read_offline_run(logged["workdir"], reader="cli")
  run = wandb_reader.read_offline_run(logged["workdir"])
  assert run["reader"] == "parser" and run["summary"]["top1"] == 0.40


def test_parser_survives_a_torn_log(logged, tmp_path):
  """A crash mid-write leaves a truncated log: the parser returns the complete prefix."""
  with open(wandb_reader.find_wandb_file(logged["workdir"]), "rb") as f:
    data = f.read()
  torn = tmp_path / "run-torn.wandb"
  torn.write_bytes(data[:len(data) * 2 // 3])
  run = wandb_reader.read_offline_run(str(torn), reader="parser")
  assert run["run_id"] == logged["run_id"] and not run["finished"]
  assert run["config"] == CONFIG
  full = logged["run"]["history"]
  assert len(run["history"]) < len(full) and run["history"] == full[:len(run["history"])]
  assert not wandb_reader.wait_for_exit_record(str(torn), timeout_s=0.05)
  torn.write_bytes(b"not a wandb file")
  with pytest.raises(ValueError, match="not a W&B transaction log"):
    wandb_reader.read_offline_run(str(torn), reader="parser")


def test_missing_run_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="no W&B run"):
    wandb_reader.read_offline_run(str(tmp_path))


def test_jsonl_and_wandb_hold_the_same_numbers(logged):
  rows = jsonl.read_metrics(os.path.join(logged["workdir"], "metrics.jsonl"))
  merged = {}
  for row in rows:
    merged.setdefault(row.pop("step"), {}).update(row)
  history = {row["_step"]: {k: v for k, v in row.items() if not k.startswith("_")}
             for row in logged["run"]["history"]}
  assert merged == history
  with open(os.path.join(logged["workdir"], "summary.json"), encoding="utf-8") as f:
    assert json.load(f) == SUMMARY
  with open(os.path.join(logged["workdir"], "config.json"), encoding="utf-8") as f:
    assert json.load(f) == CONFIG


def test_auto_without_key_or_env_goes_offline(tmp_path, monkeypatch):
  monkeypatch.delenv("WANDB_MODE", raising=False)
  monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
  w = wandb_writer.WandbWriter(str(tmp_path / "wd"), mode="auto", job_type="eval")
  w.write_scalars(1, {"eval/top1": 0.5})
  w.close()
  assert w.mode == "offline" and not w.failed
  # Read in-process right after close: close() waits for wandb-core to flush the log.
  run = wandb_reader.read_offline_run(str(tmp_path / "wd"), reader="parser")
  assert run["finished"] and run["run_id"] == w.run_id and run["job_type"] == "eval"
  assert run["history"][0]["eval/top1"] == 0.5
  assert not (tmp_path / "elsewhere").exists() or not os.listdir(tmp_path / "elsewhere")


def test_resume_continues_the_same_run_id(tmp_path, offline_env):
  del offline_env
  workdir = str(tmp_path / "wd")
  first = factory.create_writers(workdir, {"mode": "offline"}, config_dict={"a": 1},
                                 process_index=0)
  for step in (10, 20, 30):
    first.write_scalars(step, {"train/loss": float(step)})
  run_id = first.run_id
  first.close()  # Pretend the job died after a checkpoint at step 20.

  second = factory.create_writers(workdir, {"mode": "offline"}, config_dict={"a": 1},
                                  process_index=0, resume_step=20, wandb_run_id=run_id)
  assert second.run_id == run_id
  second.write_scalars(30, {"train/loss": 3.5})
  second.close()

  dirs = wandb_reader.list_run_dirs(workdir)
  assert len(dirs) == 2 and all(d.endswith(run_id) or d.endswith(run_id + "-1") for d in dirs)
  latest = wandb_reader.read_offline_run(workdir, reader="parser")
  assert latest["run_dir"] == dirs[-1]
  assert [(r["_step"], r["train/loss"]) for r in latest["history"]] == [(30, 3.5)]
  assert [(r["step"], r["train/loss"]) for r in jsonl.read_metrics(
      os.path.join(workdir, "metrics.jsonl"))] == [(10, 10.0), (20, 20.0), (30, 3.5)]


def test_table_plot_and_image_land_in_the_offline_run(tmp_path, offline_env):
  del offline_env
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  image_path = str(tmp_path / "pareto.png")
  fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
  ax.plot([1, 2], [3, 4])
  fig.savefig(image_path)
  plt.close(fig)

  rows = [[97.0, 0.60, "0.5_160"], [300.0, 0.72, "1.0_224"]]
  w = wandb_writer.WandbWriter(str(tmp_path / "wd"), mode="auto", job_type="report")
  w.log_table("runs", ["madds_m", "top1", "variant"], rows)
  w.log_plot("acc_vs_madds", "scatter", ["madds_m", "top1", "variant"], rows,
             x="madds_m", y="top1", title="top-1 vs MAdds")
  w.log_plot("curve", "line", ["step", "top1"], [[1, 0.1], [2, 0.2]], x="step", y="top1")
  w.log_image("pareto", image_path, caption="Pareto front")
  w.close()
  assert not w.failed

  files = os.path.join(w.run_dir, "files")
  tables = sorted(glob.glob(os.path.join(files, "media", "table", "*.table.json")))
  assert [os.path.basename(t).split("_")[0] for t in tables] == ["acc", "curve", "runs"]
  with open(next(t for t in tables if os.path.basename(t).startswith("runs_")),
            encoding="utf-8") as f:
    table = json.load(f)
  assert table["columns"] == ["madds_m", "top1", "variant"] and table["data"] == rows
  assert glob.glob(os.path.join(files, "media", "images", "pareto_*.png"))

  run = wandb_reader.read_offline_run(str(tmp_path / "wd"), reader="parser")
  assert run["job_type"] == "report"
  assert run["summary"]["runs"]["_type"] == "table-file"
  assert run["summary"]["acc_vs_madds_table"]["nrows"] == 2
  assert run["summary"]["pareto"]["_type"] == "image-file"


def test_disabled_mode_writes_only_the_jsonl_files(tmp_path, offline_env):
  del offline_env
  workdir = tmp_path / "wd"
  writer = factory.create_writers(str(workdir), {"mode": "disabled"}, config_dict={"a": 1},
                                  process_index=0)
  writer.write_scalars(1, {"train/loss": 1.0})
  writer.write_summary({"top1": 0.1})
  writer.close()
  assert writer.run_id is None
  assert sorted(os.listdir(workdir)) == ["config.json", "metrics.jsonl", "summary.json"]


def test_env_disabled_with_auto_writes_no_wandb_files(tmp_path, monkeypatch):
  monkeypatch.setenv("WANDB_MODE", "disabled")
  w = wandb_writer.WandbWriter(str(tmp_path / "wd"), mode="auto")
  w.write_scalars(1, {"train/loss": 1.0})
  w.close()
  assert w.mode == "disabled" and not (tmp_path / "wd").exists()


def test_other_processes_write_nothing(tmp_path):
  writer = factory.create_writers(str(tmp_path / "wd"), {"mode": "offline"},
                                  config_dict={"a": 1}, process_index=1)
  writer.write_scalars(1, {"train/loss": 1.0})
  writer.write_summary({"top1": 0.1})
  writer.close()
  assert writer.run_id is None and not (tmp_path / "wd").exists()
  with pytest.raises(ValueError, match="wandb.mode"):
    factory.create_writers(str(tmp_path), {"mode": "sometimes"}, config_dict={},
                           process_index=1)
