"""JsonlWriter: exact file contents, atomic summary, resume truncation, MultiWriter fan-out."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mnv2_jax.logging import base
from mnv2_jax.logging import jsonl


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


def _json(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def test_files_have_exact_contents(tmp_path):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run")
  w = jsonl.JsonlWriter(workdir)
  w.write_config({"model": {"width": 0.75, "switches": ("a", "b")}, "seed": np.int64(3)})
  w.write_scalars(100, {"train/loss": jnp.asarray(2.5), "train/top1": np.float32(0.25),
                        "train/images_per_sec": 1000})
  w.write_scalars(100, {"eval/top1": 0.5, "eval/top5": np.float64(0.75)})
  w.write_scalars(200, {"train/loss": float("nan")})
  w.write_scalars(300, {})  # Nothing to write: no line.
  w.write_summary({"madds": np.int64(300_000_000), "params": 3_504_872, "top1": 0.5})
  w.close()

  assert _lines(os.path.join(workdir, "metrics.jsonl")) == [
      '{"step": 100, "train/loss": 2.5, "train/top1": 0.25, "train/images_per_sec": 1000.0}',
      '{"step": 100, "eval/top1": 0.5, "eval/top5": 0.75}',
      '{"step": 200, "train/loss": null}',
  ]
  assert _json(os.path.join(workdir, "config.json")) == {
      "model": {"width": 0.75, "switches": ["a", "b"]}, "seed": 3}
  summary = _json(os.path.join(workdir, "summary.json"))
  assert summary == {"madds": 300_000_000, "params": 3_504_872, "top1": 0.5}
  assert isinstance(summary["madds"], int)


def test_each_line_is_flushed_before_close(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  w.write_scalars(1, {"train/loss": 1.0})
  assert _lines(tmp_path / "metrics.jsonl") == ['{"step": 1, "train/loss": 1.0}']
  w.close()


def test_step_key_is_reserved(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  with pytest.raises(ValueError, match="reserved"):
    w.write_scalars(1, {"step": 3})
  w.close()


def test_config_and_summary_merge_top_level_keys(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  w.write_config({"a": 1, "b": {"x": 1}})
  w.write_config({"madds": 10, "b": {"y": 2}})
  w.write_summary({"top1": 0.1, "madds": 10})
  w.write_summary({"top1": 0.2, "wall_time_s": 5.0})
  w.close()
  assert _json(tmp_path / "config.json") == {"a": 1, "b": {"y": 2}, "madds": 10}
  assert _json(tmp_path / "summary.json") == {"top1": 0.2, "madds": 10, "wall_time_s": 5.0}


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_summary_write_keeps_old_file(tmp_path, monkeypatch, failing):
  w = jsonl.JsonlWriter(str(tmp_path))
  w.write_summary({"top1": 0.5})
  before = (tmp_path / "summary.json").read_bytes()

  def boom(*args, **kwargs):
    del args, kwargs
    raise OSError("disk went away")
  monkeypatch.setattr(jsonl.os, failing, boom)
  with pytest.raises(OSError, match="disk went away"):
    w.write_summary({"top1": 0.9})
  monkeypatch.undo()

  assert (tmp_path / "summary.json").read_bytes() == before
  assert sorted(os.listdir(tmp_path)) == ["summary.json"]  # No temporary file left behind.
  w.close()


def test_unserialisable_summary_never_touches_file(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  w.write_summary({"top1": 0.5})
  before = (tmp_path / "summary.json").read_bytes()
  with pytest.raises(ValueError):
    jsonl.atomic_write_json(str(tmp_path / "summary.json"), {"top1": float("inf")})
  assert (tmp_path / "summary.json").read_bytes() == before
  w.close()


def test_resume_drops_lines_after_checkpoint_step_and_torn_tail(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  for step in (10, 20, 30, 40):
    w.write_scalars(step, {"train/loss": step / 10})
  w.write_summary({"madds": 7, "top1": 0.3})
  w.write_config({"seed": 1, "madds": 7})
  w.close()
  with open(tmp_path / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"step": 50, "train/lo')  # Crash in the middle of a line.

  w = jsonl.JsonlWriter(str(tmp_path), resume_from_step=20)
  assert _lines(tmp_path / "metrics.jsonl") == [
      '{"step": 10, "train/loss": 1.0}', '{"step": 20, "train/loss": 2.0}']
  w.write_scalars(30, {"train/loss": 3.5})
  w.write_summary({"top1": 0.4})
  w.write_config({"seed": 1})
  w.close()
  assert [row["step"] for row in jsonl.read_metrics(str(tmp_path / "metrics.jsonl"))] == [
      10, 20, 30]
  assert _lines(tmp_path / "metrics.jsonl")[-1] == '{"step": 30, "train/loss": 3.5}'
  # Summary and config written before the restart are kept and updated.
  assert _json(tmp_path / "summary.json") == {"madds": 7, "top1": 0.4}
  assert _json(tmp_path / "config.json") == {"seed": 1, "madds": 7}


def test_resume_from_step_method_returns_dropped_count(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  for step in (1, 2, 3):
    w.write_scalars(step, {"x": step})
  assert w.resume_from_step(1) == 2
  w.write_scalars(2, {"x": 20})
  w.close()
  assert _lines(tmp_path / "metrics.jsonl") == ['{"step": 1, "x": 1.0}', '{"step": 2, "x": 20.0}']


def test_fresh_start_in_used_workdir_forgets_old_run(tmp_path):
  w = jsonl.JsonlWriter(str(tmp_path))
  w.write_scalars(5, {"x": 1})
  w.write_summary({"top1": 0.9, "stale": 1})
  w.close()
  w = jsonl.JsonlWriter(str(tmp_path), resume_from_step=0)
  w.write_summary({"top1": 0.1})
  w.close()
  assert _lines(tmp_path / "metrics.jsonl") == []
  assert _json(tmp_path / "summary.json") == {"top1": 0.1}


class _Recorder:

  def __init__(self, fail=False):
    self.calls = []
    self.fail = fail
    self.run_id = None

  def write_config(self, config):
    self.calls.append(("config", dict(config)))

  def write_scalars(self, step, scalars):
    self.calls.append(("scalars", step, dict(scalars)))
    if self.fail:
      raise RuntimeError("sink failed")

  def write_summary(self, summary):
    self.calls.append(("summary", dict(summary)))

  def close(self):
    self.calls.append(("close",))


def test_multiwriter_fans_out_and_reraises_after_all_sinks():
  first, second = _Recorder(fail=True), _Recorder()
  second.run_id = "abc"
  writer = base.MultiWriter([first, second])
  assert isinstance(writer, base.MetricWriter)
  writer.write_config({"a": 1})
  with pytest.raises(RuntimeError, match="sink failed"):
    writer.write_scalars(5, {"train/loss": 1.0})
  writer.write_summary({"top1": 0.5})
  writer.close()
  expected = [("config", {"a": 1}), ("scalars", 5, {"train/loss": 1.0}),
              ("summary", {"top1": 0.5}), ("close",)]
  assert first.calls == expected and second.calls == expected
  assert writer.run_id == "abc"
  assert base.MultiWriter([]).run_id is None
