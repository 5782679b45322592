"""`ops.batchnorm` / `models.layers.BatchNormAct` compute what flax's BatchNorm + clip computes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax.models.layers import BatchNormAct
from mnv2_jax.ops import batchnorm as bn_ops
from mnv2_jax.ops import native


@pytest.fixture(params=["xla", "native"])
def path(request):
  """Runs a test once with XLA's reductions and once with the native kernels."""
  if request.param == "native":
    assert jax.default_backend() == "cpu" and native.available(), native.unavailable_reason()
  return request.param


class _FlaxReference(nn.Module):
  activation: str
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x, *, train):
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-3, dtype=self.dtype,
                     param_dtype=jnp.float32, name="bn")(x)
    return jnp.clip(x, 0, 6) if self.activation == "relu6" else x


class _Ours(nn.Module):
  activation: str
  dtype: object = jnp.float32
  impl: str = "xla"

  @nn.compact
  def __call__(self, x, *, train):
    return BatchNormAct(self.activation, 0.9, 1e-3, self.dtype, self.impl, name="bn")(
        x, train=train)


def _setup(activation, dtype=jnp.float32, seed=0, impl="xla"):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(1.5, 2.0, (4, 5, 6, 7)), jnp.float32).astype(dtype)
  ours, ref = _Ours(activation, dtype, impl), _FlaxReference(activation, dtype)
  variables = ref.init(jax.random.key(0), x, train=False)
  assert jax.tree.structure(ours.init(jax.random.key(0), x, train=False)) == jax.tree.structure(
      variables)
  # Non-trivial parameters and statistics.
  variables = jax.tree.map(lambda v: v + jnp.asarray(rng.normal(0, 0.3, v.shape), v.dtype),
                           variables)
  return x, ours, ref, variables


@pytest.mark.parametrize("activation", ["relu6", "linear"])
def test_train_mode_values_stats_and_gradients_match_flax(activation, path):
  x, ours, ref, variables = _setup(activation, impl=path)
  g = jnp.asarray(np.random.default_rng(1).normal(size=x.shape), jnp.float32)

  def run(module):
    def loss(params, x):
      y, upd = module.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                            train=True, mutable=["batch_stats"])
      return jnp.sum(y * g), (y, upd["batch_stats"])
    (_, (y, stats)), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
        variables["params"], x)
    return y, stats, grads

  y, stats, (dparams, dx) = run(ours)
  y_ref, stats_ref, (dparams_ref, dx_ref) = run(ref)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), stats,
               stats_ref)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), dparams,
               dparams_ref)
  if activation == "relu6":  # The clip is active on both sides, so the mask is exercised.
    assert 0 < float(jnp.mean(y == 0)) < 1 and float(jnp.max(y)) <= 6


def test_eval_mode_uses_running_statistics(path):
  x, ours, ref, variables = _setup("relu6", impl=path)
  y = ours.apply(variables, x, train=False)
  np.testing.assert_allclose(y, ref.apply(variables, x, train=False), rtol=1e-5, atol=1e-5)
  # And not the batch statistics: shifting the batch shifts the output one for one.
  scale = variables["params"]["bn"]["scale"] * jax.lax.rsqrt(
      variables["batch_stats"]["bn"]["var"] + 1e-3)
  y_lin = _Ours("linear").apply(variables, x + 0.01, train=False)
  np.testing.assert_allclose(y_lin - _Ours("linear").apply(variables, x, train=False),
                             jnp.broadcast_to(0.01 * scale, x.shape), rtol=1e-3, atol=1e-5)


def test_bfloat16_compute_keeps_float32_statistics():
  x, ours, ref, variables = _setup("relu6", jnp.bfloat16)
  y, upd = ours.apply(variables, x, train=True, mutable=["batch_stats"])
  y_ref, upd_ref = ref.apply(variables, x, train=True, mutable=["batch_stats"])
  assert y.dtype == jnp.bfloat16 and upd["batch_stats"]["bn"]["mean"].dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(y_ref, np.float32),
                             rtol=2e-2, atol=5e-2)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5),
               upd["batch_stats"], upd_ref["batch_stats"])


def test_running_statistics_untouched_while_initialising(path):
  x = jnp.ones((2, 3, 3, 4)) * 5.0
  variables = _Ours("relu6", impl=path).init(jax.random.key(0), x, train=True)
  np.testing.assert_array_equal(variables["batch_stats"]["bn"]["mean"], np.zeros(4))
  np.testing.assert_array_equal(variables["batch_stats"]["bn"]["var"], np.ones(4))


def test_unknown_activation_is_rejected():
  with pytest.raises(ValueError, match="activation must be one of"):
    bn_ops.batch_norm_act(jnp.ones((2, 3)), jnp.ones(3), jnp.zeros(3), 1e-3, "gelu")


def test_native_path_is_taken_only_when_chosen():
  """Guards the fixture above: impl="native" really calls the native kernels, "xla" does not."""
  x = jnp.ones((2, 3, 3, 4))
  args = (x, jnp.ones(4), jnp.zeros(4), 1e-3, "relu6")
  native_hlo = jax.jit(lambda *a: bn_ops.batch_norm_act(*a[:3], 1e-3, "relu6", "native")).lower(
      *args[:3]).as_text()
  xla_hlo = jax.jit(lambda *a: bn_ops.batch_norm_act(*a[:3], 1e-3, "relu6", "xla")).lower(
      *args[:3]).as_text()
  assert "Mnv2BnMoments" in native_hlo and "Mnv2BnMoments" not in xla_hlo
  with pytest.raises(ValueError, match="float32"):  # bfloat16 has no native path.
    bn_ops.batch_norm_act(x.astype(jnp.bfloat16), *args[1:], "native")
