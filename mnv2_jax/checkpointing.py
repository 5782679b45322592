"""Orbax checkpoints of the whole `TrainState` plus a small JSON of run metadata.

- Saves are asynchronous (training continues while the state is written) and atomic: orbax
  writes into a temporary directory and renames it when complete, so a run killed at any
  moment (SIGKILL included) leaves the previous checkpoints intact and an unfinished one is
  ignored and cleaned up on the next start.
- `keep` most recent checkpoints are kept.
- Restore reads the latest complete checkpoint straight into the target shardings.
- The metadata item holds what the state does not: the W&B run id (so a resumed run continues
  the same W&B run), best eval accuracy so far and accumulated wall time.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  def __init__(self, workdir: str, *, keep: int, every_steps: int):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.every_steps = every_steps
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=True,
        cleanup_tmp_directories=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, meta: dict[str, Any], *, wait: bool = False) -> None:
    """Starts an asynchronous save of `state` (and `meta`) as checkpoint `step`."""
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)
    if wait:
      self.manager.wait_until_finished()

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores checkpoint `step` (default latest) into `abstract_state`'s shapes/shardings."""
    step = self.latest_step() if step is None else step
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored["state"], dict(restored["meta"])

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_like(state: Any) -> Any:
  """ShapeDtypeStructs (with shardings) describing `state`, the target of a restore."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
