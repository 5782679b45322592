"""Run logging: JSONL files in the workdir (ground truth), Weights & Biases, console progress.

Typical use in the trainer (process 0 writes, the others get no-op writers)::

  from mnv2_jax import logging as mlog

  writer = mlog.create_writers(workdir, config.wandb, config_dict=cfg,
                               process_index=jax.process_index(),
                               resume_step=start_step, wandb_run_id=saved_run_id)
  # Save writer.run_id in the checkpoint metadata to continue the same W&B run on restart.
  progress = mlog.ConsoleProgress(total_steps, global_batch_size, start_step=start_step)
  ...
  rates = progress.update(step, train_scalars)
  writer.write_scalars(step, {**train_scalars, **rates})
  writer.write_summary({"top1": best_top1, "madds": madds, "params": params, ...})
  writer.close()

``read_offline_run`` reads a W&B run back from disk (tests, results tooling).
The stdlib ``logging`` is not shadowed: absolute imports resolve ``import logging`` to it.
"""

from mnv2_jax.logging.base import MetricWriter
from mnv2_jax.logging.base import MultiWriter
from mnv2_jax.logging.base import NullWriter
from mnv2_jax.logging.console import ConsoleProgress
from mnv2_jax.logging.console import format_duration
from mnv2_jax.logging.factory import create_writers
from mnv2_jax.logging.factory import default_wandb_config
from mnv2_jax.logging.jsonl import JsonlWriter
from mnv2_jax.logging.jsonl import read_metrics
from mnv2_jax.logging.wandb_mode import MODES as WANDB_MODES
from mnv2_jax.logging.wandb_reader import list_run_dirs
from mnv2_jax.logging.wandb_reader import read_offline_run
from mnv2_jax.logging.wandb_writer import WandbWriter

__all__ = [
    "ConsoleProgress", "JsonlWriter", "MetricWriter", "MultiWriter", "NullWriter",
    "WANDB_MODES", "WandbWriter", "create_writers", "default_wandb_config",
    "format_duration", "list_run_dirs", "read_metrics", "read_offline_run",
]
