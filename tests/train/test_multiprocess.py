"""Two JAX processes (localhost coordinator, gloo CPU collectives) train exactly like one.

Both setups see the same global batch every step: the synthetic dataset is given exactly one
global batch of examples, so process p's contiguous shard is rows [8p, 8p + 8) of the batch the
single process sees. Gradients and batch-norm moments are then reduced across processes by
XLA's collectives; the loss trajectory must match the single-process run within 1e-5.
"""

import socket

from mnv2_jax import logging as mlog
from tests.train import helpers

SYNTHETIC = ("--config.input.dataset=synthetic", "--config.input.synthetic_num_examples=16",
             "--config.input.synthetic_num_classes=10", "--config.input.global_batch_size=16",
             "--config.input.eval_batch_size=16", "--config.train.num_steps=6",
             "--config.train.eval_every_steps=6", "--config.train.checkpoint_every_steps=6",
             "--config.model.dropout_rate=0.0")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _losses(workdir):
  rows = mlog.read_metrics(f"{workdir}/metrics.jsonl")
  return [r["train/loss"] for r in rows if "train/loss" in r]


def test_two_processes_match_one_process(tmp_path):
  env = helpers.env()
  single = str(tmp_path / "single")
  proc = helpers.start(helpers.tiny_flags(single, *SYNTHETIC), tmp_path / "single.log", env)
  assert proc.wait(900) == 0, (tmp_path / "single.log").read_text()[-3000:]

  multi = str(tmp_path / "multi")
  port = _free_port()
  procs = [helpers.start(
      helpers.tiny_flags(multi, *SYNTHETIC, "--multihost",
                         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                         f"--process_id={i}"), tmp_path / f"multi{i}.log", env)
           for i in range(2)]
  for i, p in enumerate(procs):
    assert p.wait(900) == 0, (tmp_path / f"multi{i}.log").read_text()[-3000:]
  # The two runs really had different topologies.
  assert "mesh: 2 devices over 2 processes" in (tmp_path / "multi0.log").read_text()
  assert "mesh: 1 devices over 1 processes" in (tmp_path / "single.log").read_text()
  want, got = _losses(single), _losses(multi)
  assert len(want) == len(got) == 6
  for a, b in zip(got, want):
    assert abs(a - b) <= 1e-5, (got, want)
