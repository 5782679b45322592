"""Dilated (atrous) depthwise convs: every implementation, forward and both gradients.

Reference: a dilated k x k kernel is the undilated kernel of extent rate * (k - 1) + 1 with
zeros between its taps, so the reference is XLA's *undilated* grouped conv with that
zero-inserted kernel (an independent formulation of the same function, SAME padding
included). `native` has no rate: it must give the same numbers by running `taps_vjp`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mnv2_jax.ops import depthwise as dw
from mnv2_jax.ops import native

IMPLS = [i for i in dw.IMPLEMENTATIONS if i != "native" or native.available()]


def _inserted(kernel, rate):
  kh, kw, _, c = kernel.shape
  out = jnp.zeros((dw.dilated_extent(kh, rate), dw.dilated_extent(kw, rate), 1, c), kernel.dtype)
  return out.at[::rate, ::rate].set(kernel)


def _reference(x, kernel, rate):
  return dw.depthwise_conv(x, _inserted(kernel, rate), 1, impl="xla")


@pytest.mark.parametrize("impl", IMPLS)
# A 5x5 kernel at rate 2 on a 7x8 map (odd and even sizes), and a 3x3 kernel at rate 6 on a
# 5x6 map: its outer taps fall entirely in the SAME padding (rate * (k - 1) > size).
@pytest.mark.parametrize("size,kernel,rate", [(7, 5, 2), (5, 3, 6)])
def test_dilated_matches_zero_inserted_kernel(impl, size, kernel, rate):
  kx, kk, kg = jax.random.split(jax.random.key(size * rate + kernel), 3)
  x = jax.random.normal(kx, (2, size, size + 1, 4))
  k = jax.random.normal(kk, (kernel, kernel, 1, 4))
  g = jax.random.normal(kg, (2, size, size + 1, 4))

  def loss(fn):
    return lambda x, k: jnp.sum(fn(x, k) * g)

  ours = lambda x, k: dw.depthwise_conv(x, k, 1, impl=impl, rate=rate)
  ref = lambda x, k: _reference(x, k, rate)
  np.testing.assert_allclose(ours(x, k), ref(x, k), rtol=1e-5, atol=1e-5)
  got = jax.grad(loss(ours), argnums=(0, 1))(x, k)
  want = jax.grad(loss(ref), argnums=(0, 1))(x, k)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
  # Rate 1 is not what was computed: the dilation really acted.
  assert not np.allclose(ours(x, k), dw.depthwise_conv(x, k, 1, impl="xla"), atol=1e-3)


def test_taps_vjp_dilated_gradients_numerically():
  x = jax.random.normal(jax.random.key(0), (1, 6, 6, 2))
  k = jax.random.normal(jax.random.key(1), (3, 3, 1, 2))
  check_grads(lambda x, k: dw.depthwise_conv(x, k, 1, impl="taps_vjp", rate=2), (x, k),
              order=1, modes=("rev",), atol=1e-2, rtol=1e-2)


def test_rate_needs_stride_one():
  x, k = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 1, 2))
  with pytest.raises(ValueError, match="only with stride 1"):
    dw.depthwise_conv(x, k, 2, impl="xla", rate=2)
