"""Device mesh and shardings for data-parallel training over every device of every process.

One mesh axis, `data`, spans `jax.devices()` (all processes). Batches are sharded on their
leading axis over `data`; parameters, optimizer state and batch-norm statistics are
replicated. Everything runs under `jax.jit` with these `NamedSharding`s (no pmap): the gradient
all-reduce and the batch-norm moment reductions over the global batch are inserted by XLA's
SPMD partitioner, so the math is exactly that of one device holding the whole global batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(global_batch_size: int, field: str = "input.global_batch_size") -> int:
  """The global batch must split evenly over devices and processes; returns the local batch."""
  devices, processes = jax.device_count(), jax.process_count()
  if global_batch_size <= 0 or global_batch_size % devices:
    raise ValueError(f"{field}={global_batch_size} must be a positive multiple of the device "
                     f"count ({devices} devices over {processes} processes)")
  return global_batch_size // processes


def global_batch(mesh: Mesh, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Assembles each process's local rows into one globally sharded `jax.Array` per key."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}
