"""`ops.pointwise.pointwise_conv` equals a plain channel matmul, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax.ops import pointwise


def _reference(x, w):
  return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


@pytest.mark.parametrize("impl", pointwise.IMPLEMENTATIONS)
@pytest.mark.parametrize("cin,cout", [(8, 48), (48, 8), (16, 16)])  # Both transpose choices.
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("bfloat16", 3e-2)])
def test_values_and_gradients_match_autodiff(cin, cout, dtype, tol, impl):
  rng = np.random.default_rng(cin * 100 + cout)
  x = jnp.asarray(rng.standard_normal((3, 5, 7, cin)), dtype)
  w = jnp.asarray(rng.standard_normal((cin, cout)), dtype)
  g = jnp.asarray(rng.standard_normal((3, 5, 7, cout)), jnp.float32)

  def grads(fn):
    loss = lambda x, w: jnp.sum(fn(x, w).astype(jnp.float32) * g)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, w)

  (val, (dx, dw)), (val_ref, (dx_ref, dw_ref)) = grads(
      lambda x, w: pointwise.pointwise_conv(x, w, impl)), grads(_reference)
  assert dx.dtype == x.dtype and dw.dtype == w.dtype and dw.shape == (cin, cout)
  scale = lambda a: float(jnp.max(jnp.abs(a.astype(jnp.float32))))
  np.testing.assert_allclose(float(val), float(val_ref), rtol=tol)
  for a, b in ((dx, dx_ref), (dw, dw_ref)):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               rtol=tol, atol=tol * scale(b))


def test_conv_form_needs_nhwc():
  with pytest.raises(ValueError, match="'conv' needs an NHWC input"):
    pointwise.pointwise_conv(jnp.ones((3, 8)), jnp.ones((8, 4)), "conv")
