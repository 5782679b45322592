"""A trained run's model and inference variables, from its workdir (`mnv2-eval`, `mnv2-export`).

The dataset sizes, run length and model are computed by `validate` exactly as the trainer did
(same dataset, batch and durations), so the orbax restore target has the trained structure
(optimizer state included); only the variables the forward pass needs are returned.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from mnv2_jax import checkpointing
from mnv2_jax import optim
from mnv2_jax import train_state
from mnv2_jax import validate


@dataclasses.dataclass(frozen=True)
class Restored:
  config: Any          # the run's ml_collections.ConfigDict (from config.json)
  model: Any           # the run's flax module, as `validate.check_model` builds it
  variables: dict      # {"params", "batch_stats"}: EMA weights if trained with EMA, unless raw
  step: int


def check_workdir(workdir: str, flag: str = "--workdir") -> None:
  """ValueError unless `workdir` is an `mnv2-train` run directory (has config.json)."""
  if not os.path.isfile(os.path.join(workdir, "config.json")):
    raise ValueError(f"{flag}={workdir!r} has no config.json; allowed: the workdir of an "
                     "mnv2-train run")


def checkpoint_step(workdir: str, step: int | None = None, flag: str = "--workdir",
                    step_flag: str = "--step") -> int:
  """`step` if it is saved in `workdir`, else the newest saved step when `step` is None;
  ValueError naming `flag` / `step_flag` (and the saved steps) otherwise."""
  ckpt = checkpointing.Checkpointer(workdir, keep=10**6, every_steps=1)
  saved = sorted(ckpt.manager.all_steps())
  ckpt.close()
  if not saved:
    raise ValueError(f"{flag}={workdir!r} has no checkpoint (run mnv2-train there first, or "
                     "let it reach a checkpoint)")
  if step is None:
    return saved[-1]
  if step not in saved:
    raise ValueError(f"{step_flag}={step} is not saved in {workdir!r}; allowed: {saved}")
  return step


def load_config(workdir: str):
  """The run config back from a workdir's config.json (extra top-level numbers are kept)."""
  with open(os.path.join(workdir, "config.json")) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore(workdir: str, step: int | None = None, *, raw: bool = False, config=None,
            transform: Callable[[Any], Any] | None = None) -> Restored:
  """Model + eval variables of `workdir`'s checkpoint `step` (default: the latest).

  `transform(model)` (e.g. `inference_split`) runs before the checkpoint is looked up, so its
  ValueError comes first; the restore target is built from the trained model itself.
  """
  config = load_config(workdir) if config is None else config
  info = validate.dataset_info(config.input)
  length = validate.run_length(config, info)
  model = validate.check_model(config, info.num_classes)
  returned = transform(model) if transform else model
  tx, _ = optim.make_optimizer(config.optim, steps_per_epoch=length.steps_per_epoch,
                               global_batch_size=config.input.global_batch_size,
                               total_steps=length.total_steps)
  ema = config.optim.ema_decay > 0
  abstract = jax.eval_shape(lambda: train_state.create(
      model, tx, seed=config.seed, resolution=config.input.resolution, ema=ema))
  step = checkpoint_step(workdir, step)
  ckpt = checkpointing.Checkpointer(workdir, keep=10**6, every_steps=1)
  state, _ = ckpt.restore(abstract, step)
  ckpt.close()
  variables = train_state.eval_variables(state, use_ema=ema and not raw)
  return Restored(config, returned, variables, step)
