"""The training state (one pytree, checkpointed whole) and how it is created.

Everything needed for a bit-exact resume lives here: parameters, batch-norm statistics,
optimizer state, the EMA of both, the step and the base PRNG key. The per-step dropout key is
`fold_in(rng, step)` and the data stream is a pure function of (seed, step), so restoring this
state and the step reproduces an uninterrupted run exactly.
"""

from __future__ import annotations

from typing import Any

from absl import logging
import flax.struct
import jax
import jax.numpy as jnp
import optax

from mnv2_jax import ablations
from mnv2_jax import init_prng
from mnv2_jax import models
from mnv2_jax import spec as spec_lib
from mnv2_jax.ops import impl as impl_lib


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  ema_params: Any
  ema_batch_stats: Any
  rng: jax.Array  # raw uint32 key data (checkpointable)


def eval_variables(state: TrainState, *, use_ema: bool) -> dict:
  """Variables to evaluate: the EMA weights and BN statistics, or the raw ones."""
  if use_ema:
    return {"params": state.ema_params, "batch_stats": state.ema_batch_stats}
  return {"params": state.params, "batch_stats": state.batch_stats}


def build_model(model_cfg, num_classes: int):
  """The Flax module described by `config.model` (raises ValueError naming a bad field)."""
  fields = dict(model_cfg)
  name = spec_lib.check_model_name(fields.pop("name"))
  for axis in ablations.axes():  # A MobileNetV1 config keeps the V2 axes' fields.
    if name not in axis.models:
      fields.pop(axis.field, None)
  fields.pop("num_classes", None)
  impl = dict(fields.pop("impl", None) or {})
  if "depthwise_impl" in fields:  # config.json of runs made before `model.impl` existed.
    impl.setdefault("depthwise", fields.pop("depthwise_impl"))
  fields["impl"] = impl_lib.Impl.from_config(impl)
  try:
    return models.MODELS[name](num_classes=num_classes, **fields)
  except TypeError as e:
    raise ValueError(f"config.model has a field {name} does not take: {e}") from e


def resolve_impl(model):
  """`model` with `model.impl` resolved for this backend (no "auto" left), logged once."""
  resolved = model.impl.resolve(dtype=model.dtype)
  logging.info("model.impl: %s (configured: %s, backend %s)", resolved.describe(),
               model.impl.describe(), jax.default_backend())
  return model.clone(impl=resolved)


def create(model, tx: optax.GradientTransformation, *, seed: int | jax.Array, resolution: int,
           ema: bool, pretrained: dict | None = None,
           init_impl: Any = init_prng.IMPL) -> TrainState:
  """Initial state (call under jit with out_shardings to create it already placed).

  `seed` may be a Python int or a traced int32 scalar: the state is the same bit for bit, and
  a traced seed lets every seed share one compiled program. `pretrained` ({collection:
  {scope: subtree}}, e.g. `backbone_init.load`'s {"params": ..., "batch_stats": ...} under
  "backbone") replaces those subtrees of the random init before the optimizer state and the
  EMA are made from the parameters. `init_impl` is the PRNG implementation that draws the
  initial parameters (a `jax.random.key` impl; benchmarks/init_compile.py compares them).
  """
  # Parameters are drawn by numpy on the host (init_prng: the same bits on every backend, and
  # ~90 parameter draws that compile to callbacks instead of ~90 expansions of XLA's generator).
  # Everything after init uses the threefry key `state_rng`.
  init_rng = jax.random.key(seed, impl=init_impl)
  state_rng = jax.random.fold_in(jax.random.key(seed), 1)
  x = jnp.zeros((1, resolution, resolution, 3), jnp.float32)
  variables = model.init(init_rng, x, train=False)
  params, batch_stats = variables["params"], variables.get("batch_stats", {})
  if pretrained:
    params = {**params, **pretrained.get("params", {})}
    batch_stats = {**batch_stats, **pretrained.get("batch_stats", {})}
  return TrainState(
      step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
      opt_state=tx.init(params),
      ema_params=params if ema else None, ema_batch_stats=batch_stats if ema else None,
      rng=jax.random.key_data(state_rng))
