"""`mnv2-train` / `python -m mnv2_jax.main`: a thin absl entry point over `train_and_evaluate`.

    mnv2-train --workdir=runs/digits                       # embedded default: configs/digits.py
    mnv2-train --config=configs/imagenet.py:width=0.75,res=160 --workdir=DIR \
        --config.model.shortcut=expansion --config.seed=1

Multi-host (TPU pods, SLURM, or explicit): pass `--multihost`; `jax.distributed.initialize`
then reads the cluster from the environment, or from `--coordinator_address`,
`--num_processes` and `--process_id` when given. Exit status: 0 finished, 143 preempted by
SIGTERM after a checkpoint, 1 error.
"""

from __future__ import annotations

import importlib.util
import logging as pylogging
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags


def default_config_path() -> str:
  spec = importlib.util.find_spec("configs.digits")
  if spec is None or spec.origin is None:
    raise FileNotFoundError("configs/digits.py not found; pass --config=PATH")
  return spec.origin


FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", default_config_path(), "Config file: configs/<name>.py[:arg]. Default: the "
    "embedded offline digits config, configs/digits.py.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, W&B files).")
flags.DEFINE_bool("multihost", False, "Call jax.distributed.initialize() first.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multihost).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multihost).")
flags.DEFINE_integer("process_id", None, "This process's index (multihost).")
flags.mark_flag_as_required("workdir")


class _QuietLibraries:
  """absl log filter: INFO chatter from orbax/jax internals is dropped, warnings kept."""

  def filter(self, record) -> bool:
    noisy = "/orbax/" in record.pathname or "/jax/_src/" in record.pathname
    return record.levelno >= pylogging.WARNING or not noisy


def main(argv):
  logging.get_absl_handler().python_handler.addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.multihost:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                               FLAGS.process_id)
  from mnv2_jax import train  # pylint: disable=g-import-not-at-top
  config = FLAGS.config
  try:
    summary = train.train_and_evaluate(config, FLAGS.workdir)
  except train.Preempted as e:
    logging.warning("%s", e)
    sys.exit(143)
  tail = (f"MAdds {summary['madds']:,}  params {summary['params']:,}  "
          f"wall {summary['wall_time_s']:.0f}s  -> {os.path.abspath(FLAGS.workdir)}")
  if summary.get("task", "classification") != "classification":
    metric = summary["metric"]
    print(f"final eval {metric} {summary['final_metric']:.4f} (best {summary['best_metric']:.4f}"
          f" at step {summary['best_step']})  {tail}")
    return
  logging.info("finished: eval top-1 %.4f (best %.4f at step %d); results in %s",
               summary["final/top1"], summary["best/top1"], summary["best_step"],
               FLAGS.workdir)
  print(f"final eval top-1 {summary['final/top1']:.4f}  top-5 {summary['final/top5']:.4f}  "
        f"{tail}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
