"""Precise-BN recalibration (`train.recalibrate_bn` + `steps.make_bn_stats_step`) against numpy.

Expected semantics (pycls / detectron2 `update_bn_stats`): over the recalibration batches, each
layer's new mean is the average of its per-batch input means and its new variance the average of
the per-batch biased variances, every batch normalised by its own statistics as in training.
The reference reads each batch-norm layer's input (its conv's output, captured by flax) and
computes those moments in float64 numpy; nothing of the code under test is replaced.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax import data
from mnv2_jax import steps
from mnv2_jax import train
from mnv2_jax.models import MobileNetV2
from mnv2_jax.models import layers
from mnv2_jax.ops.impl import Impl

KW = dict(width_multiplier=0.35, num_classes=10, dropout_rate=0.0)
XLA = Impl(depthwise="xla", batchnorm="xla", pointwise="dot")  # the accelerator formulation


def _batches():
  rng = np.random.default_rng(0)
  # Batches with visibly different statistics, so that averaging over them matters.
  return [{"image": np.clip(rng.normal(60 + 60 * i, 30, (8, 32, 32, 3)), 0, 255).astype(np.uint8),
           "label": rng.integers(0, 10, 8).astype(np.int32)} for i in range(3)]


def _numpy_reference(model, variables, batches):
  """Per layer: (mean of per-batch means, mean of per-batch biased variances), float64."""
  capture = jax.jit(lambda v, x: model.apply(
      v, x, train=True, mutable=["batch_stats", "intermediates"],
      capture_intermediates=lambda mdl, _: isinstance(mdl, layers.Conv))[1])
  per_batch = []
  for batch in batches:
    state = capture(variables, data.normalize(jnp.asarray(batch["image"]), jnp.float32))
    moments = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]:
      keys = [k.key for k in path if hasattr(k, "key")]   # scope, layer, "conv", "__call__"
      conv_out = np.asarray(leaf, np.float64)
      moments[tuple(keys[:2])] = (conv_out.mean(axis=(0, 1, 2)), conv_out.var(axis=(0, 1, 2)))
    per_batch.append(moments)
  return {k: (np.mean([m[k][0] for m in per_batch], 0), np.mean([m[k][1] for m in per_batch], 0))
          for k in per_batch[0]}, per_batch


@pytest.fixture(scope="module")
def reference():
  """(variables with stale statistics, batches, numpy moments, per-batch moments), built once.

  Variables do not depend on the formulation, and the reference is computed from the conv
  outputs of the XLA formulation, so every formulation's recalibration is checked against
  numpy over moments it did not compute itself (the XLA one against its own conv outputs).
  """
  model = MobileNetV2(**KW, impl=XLA)
  x0 = jnp.zeros((1, 32, 32, 3))
  variables = jax.jit(lambda: model.init(jax.random.key(0), x0, train=False))()
  # Stale running statistics, far from anything the batches produce.
  variables = {**variables, "batch_stats": jax.tree.map(lambda v: jnp.full_like(v, 5.0),
                                                        variables["batch_stats"])}
  batches = _batches()
  want, per_batch = _numpy_reference(model, variables, batches)
  return variables, batches, want, per_batch


@pytest.mark.parametrize("impl", [Impl(), XLA, Impl(batchnorm="flax")],
                         ids=["auto", "accelerator", "flax_bn"])
@pytest.mark.slow(seconds=38)
def test_recalibrated_statistics_equal_numpy_over_the_same_batches(impl, reference):
  variables, batches, want, per_batch = reference
  model = MobileNetV2(**KW, impl=impl)
  got = train.recalibrate_bn(jax.jit(steps.make_bn_stats_step(model)), variables, iter(batches))

  assert got["params"] is variables["params"]
  stats = got["batch_stats"]
  assert len(want) == len(jax.tree.leaves(stats)) // 2 > 40   # every batch-norm layer
  for (scope, name), (mean, var) in want.items():
    bn = stats[scope][name]["bn"]
    # Means of layers fed by a (zero-mean) linear bottleneck are ~0: scale by the spread.
    np.testing.assert_allclose(bn["mean"], mean, rtol=1e-4, atol=1e-4 * np.sqrt(var.max()),
                               err_msg=f"{scope}/{name} mean")
    np.testing.assert_allclose(bn["var"], var, rtol=2e-3, atol=1e-5 * var.max(),
                               err_msg=f"{scope}/{name} var")
  # The stem sees the raw images: its batches really differ, so this is an average of three.
  stem = per_batch[0][("stem", "conv")][0], per_batch[2][("stem", "conv")][0]
  assert np.abs(stem[0] - stem[1]).max() > 0.1


def test_recalibration_needs_a_batch():
  model = MobileNetV2(**KW)
  with pytest.raises(ValueError, match="at least one batch"):
    train.recalibrate_bn(steps.make_bn_stats_step(model), {"params": {}, "batch_stats": {}},
                         iter([]))
