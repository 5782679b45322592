"""Builds the writers a training run uses from ``config.wandb``.

Process 0 gets ``MultiWriter([JsonlWriter, WandbWriter])``; every other process gets a
``MultiWriter`` of nothing, so the trainer can call the writer unconditionally. The W&B mode is
validated on every process so that a typo fails fast everywhere, not only on host 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ml_collections

from mnv2_jax.logging import base
from mnv2_jax.logging import jsonl
from mnv2_jax.logging import wandb_mode
from mnv2_jax.logging import wandb_writer

WANDB_DEFAULTS = {
    "mode": "auto",
    "project": "mnv2_jax",
    "entity": None,
    "group": None,
    "job_type": "train",
    "tags": (),
    "name": None,
}


def default_wandb_config() -> ml_collections.ConfigDict:
  """``config.wandb`` with its defaults (fields that may be None accept str)."""
  cfg = ml_collections.ConfigDict()
  for key, value in WANDB_DEFAULTS.items():
    if value is None:
      value = ml_collections.FieldReference(None, field_type=str)
    setattr(cfg, key, value)
  return cfg


def _get(cfg: Any, key: str) -> Any:
  if cfg is None:
    return WANDB_DEFAULTS[key]
  if isinstance(cfg, Mapping):
    return cfg.get(key, WANDB_DEFAULTS[key])
  return cfg.get(key, WANDB_DEFAULTS[key])  # ConfigDict.get


def create_writers(workdir: str, wandb_cfg: Any, *, config_dict: Mapping[str, Any],
                   process_index: int, resume_step: int | None = None,
                   wandb_run_id: str | None = None) -> base.MultiWriter:
  """Creates the run's metric writers and writes ``config.json``.

  Args:
    workdir: run directory (files and ``wandb/`` go here).
    wandb_cfg: ``config.wandb`` (ConfigDict or mapping; missing fields take WANDB_DEFAULTS).
    config_dict: the resolved run config (plain dict); include ``madds`` and ``params`` (or
      add them later with ``write_config``) so W&B can plot accuracy against MAdds.
    process_index: ``jax.process_index()``; only process 0 writes anything.
    resume_step: checkpoint step being resumed from (0 for a fresh start in a used workdir);
      metrics.jsonl lines after it are dropped. None appends as is.
    wandb_run_id: the run id saved in the checkpoint, to continue the same W&B run.

  Returns:
    A MultiWriter; ``.run_id`` is the W&B run id to checkpoint (None if W&B is off).

  Raises:
    ValueError: if ``wandb.mode`` is not one of ``wandb_mode.MODES``.
  """
  mode = wandb_mode.validate_mode(_get(wandb_cfg, "mode"))
  if process_index != 0:
    return base.MultiWriter([])
  jsonl_writer = jsonl.JsonlWriter(workdir, resume_from_step=resume_step)
  jsonl_writer.write_config(config_dict)
  tags = _get(wandb_cfg, "tags")
  wb = wandb_writer.WandbWriter(
      workdir, mode=mode, project=_get(wandb_cfg, "project"),
      entity=_get(wandb_cfg, "entity"), group=_get(wandb_cfg, "group"),
      job_type=_get(wandb_cfg, "job_type"),
      tags=(tags,) if isinstance(tags, str) else tuple(tags or ()),
      name=_get(wandb_cfg, "name"), run_id=wandb_run_id,
      resume=resume_step is not None and resume_step > 0, config=config_dict)
  return base.MultiWriter([jsonl_writer, wb])
