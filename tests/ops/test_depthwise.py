"""Every depthwise implementation computes the same function and the same gradients.

References: XLA's grouped convolution (``impl="xla"``) and a direct NumPy evaluation of the
definition (forward, and its adjoint for the gradients), on stride 1 and 2, even and odd sizes
(TF SAME: stride 2 on even input pads 0 before / 1 after), float32 and bfloat16.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from mnv2_jax.models import MobileNetV2
from mnv2_jax.ops import depthwise as dw
from mnv2_jax.ops import native
from mnv2_jax.ops.impl import Impl

IMPLS = dw.IMPLEMENTATIONS
TOL = {"float32": dict(rtol=1e-5, atol=1e-5), "bfloat16": dict(rtol=5e-2, atol=5e-2)}


def _np_pad(x, kh, kw, stride):
  (pt, pb), (pl, pr) = (dw.same_padding(x.shape[1], kh, stride),
                        dw.same_padding(x.shape[2], kw, stride))
  return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))), pt, pl


def _np_taps(shape, kh, kw, stride):
  """Yields (di, dj, row slice, col slice) of each kernel tap over the padded input."""
  ho, wo = -(-shape[1] // stride), -(-shape[2] // stride)
  for di in range(kh):
    for dj in range(kw):
      yield (di, dj, slice(di, di + (ho - 1) * stride + 1, stride),
             slice(dj, dj + (wo - 1) * stride + 1, stride))


def np_depthwise(x, k, stride):
  """y[n,i,j,c] = sum_{di,dj} xpad[n, s*i+di, s*j+dj, c] * k[di,dj,0,c], in float64."""
  x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
  xp, _, _ = _np_pad(x, k.shape[0], k.shape[1], stride)
  return sum(xp[:, rs, cs, :] * k[di, dj, 0]
             for di, dj, rs, cs in _np_taps(x.shape, k.shape[0], k.shape[1], stride))


def np_depthwise_grads(x, k, stride, g):
  """(dL/dx, dL/dk) for L = sum(y * g), by the adjoint of the definition, in float64."""
  x, k, g = (np.asarray(a, np.float64) for a in (x, k, g))
  xp, pt, pl = _np_pad(x, k.shape[0], k.shape[1], stride)
  dxp, dk = np.zeros_like(xp), np.zeros_like(k)
  for di, dj, rs, cs in _np_taps(x.shape, k.shape[0], k.shape[1], stride):
    dxp[:, rs, cs, :] += g * k[di, dj, 0]
    dk[di, dj, 0] = np.sum(xp[:, rs, cs, :] * g, axis=(0, 1, 2))
  return dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2], :], dk


def _inputs(h, w, stride, c=5, k=3, dtype="float32", seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((2, h, w, c)).astype(np.float32)
  kern = rng.standard_normal((k, k, 1, c)).astype(np.float32)
  g = rng.standard_normal((2, -(-h // stride), -(-w // stride), c)).astype(np.float32)
  if dtype == "bfloat16":  # Round once so every path sees identical bf16 values.
    x, kern, g = (np.asarray(jnp.asarray(a, jnp.bfloat16), np.float32) for a in (x, kern, g))
  return x, kern, g


def _grads(impl, x, kern, g, stride, dtype):
  def loss(x, kern):
    y = dw.depthwise_conv(x, kern, stride, impl)
    return jnp.sum(y.astype(jnp.float32) * g)
  return jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(x, dtype), jnp.asarray(kern, dtype))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(8, 8), (7, 9)])
@pytest.mark.parametrize("impl", IMPLS)
def test_forward_and_gradients_match_numpy_and_xla(impl, hw, stride, dtype):
  x, kern, g = _inputs(*hw, stride, dtype=dtype)
  xj, kj = jnp.asarray(x, dtype), jnp.asarray(kern, dtype)
  fwd = jax.jit(dw.depthwise_conv, static_argnums=(2, 3))
  y = fwd(xj, kj, stride, impl)
  assert y.dtype == jnp.dtype(dtype)
  assert y.shape == (2, -(-hw[0] // stride), -(-hw[1] // stride), 5)
  y = np.asarray(y, np.float32)
  np.testing.assert_allclose(y, np_depthwise(x, kern, stride), **TOL[dtype])
  np.testing.assert_allclose(y, np.asarray(fwd(xj, kj, stride, "xla"), np.float32),
                             **TOL[dtype])

  dx, dk = _grads(impl, x, kern, g, stride, dtype)
  assert dx.dtype == jnp.dtype(dtype) and dk.dtype == jnp.dtype(dtype)
  ref_dx, ref_dk = np_depthwise_grads(x, kern, stride, g)
  # The weight gradient sums 2*H*W products per entry: scale the tolerance with the magnitude.
  dk_tol = dict(rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * np.abs(ref_dk).max())
  np.testing.assert_allclose(np.asarray(dx, np.float32), ref_dx, **TOL[dtype])
  np.testing.assert_allclose(np.asarray(dk, np.float32), ref_dk, **dk_tol)
  xla_dx, xla_dk = _grads("xla", x, kern, g, stride, dtype)
  np.testing.assert_allclose(np.asarray(dx, np.float32), np.asarray(xla_dx, np.float32),
                             **TOL[dtype])
  np.testing.assert_allclose(np.asarray(dk, np.float32), np.asarray(xla_dk, np.float32),
                             **dk_tol)


@pytest.mark.parametrize("kernel,stride,hw", [(5, 2, (9, 6)), (1, 2, (6, 6)), (3, 3, (7, 8)),
                                              (5, 1, (6, 7))])
def test_other_kernel_sizes_and_strides(kernel, stride, hw):
  """The polyphase input gradient is general: kernels of 1 and 5, stride 3, odd sizes."""
  x, kern, g = _inputs(*hw, stride, k=kernel)
  ref_dx, ref_dk = np_depthwise_grads(x, kern, stride, g)
  fwd = jax.jit(dw.depthwise_conv, static_argnums=(2, 3))
  for impl in IMPLS:
    y = fwd(jnp.asarray(x), jnp.asarray(kern), stride, impl)
    np.testing.assert_allclose(np.asarray(y), np_depthwise(x, kern, stride), rtol=1e-5,
                               atol=1e-5)
    dx, dk = _grads(impl, x, kern, g, stride, "float32")
    np.testing.assert_allclose(np.asarray(dx), ref_dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dk), ref_dk, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("impl", ["taps_vjp", "native"])
@pytest.mark.parametrize("stride", [1, 2])
def test_custom_vjp_check_grads(stride, impl):
  x, kern, _ = _inputs(7, 8, stride)
  f = lambda x, k: dw.depthwise_conv(x, k, stride, impl)
  check_grads(f, (jnp.asarray(x), jnp.asarray(kern)), order=1, modes=("rev",), atol=2e-2,
              rtol=2e-2)


@pytest.mark.parametrize("impl", ["taps_vjp", "native"])
def test_custom_vjp_under_vmap_and_second_jit(impl):
  """The custom VJP composes with vmap (per-example grads) and nested jit."""
  x, kern, g = _inputs(6, 6, 2)
  per_ex = jax.vmap(lambda xi, gi: _grads(impl, xi[None], kern, gi[None], 2,
                                          "float32")[1])(jnp.asarray(x), jnp.asarray(g))
  total = _grads(impl, x, kern, g, 2, "float32")[1]
  np.testing.assert_allclose(np.asarray(per_ex.sum(0)), np.asarray(total), rtol=1e-5,
                             atol=1e-4)


def test_resolve_impl(monkeypatch):
  assert dw.resolve_impl("auto", "cpu") == "native"
  assert dw.resolve_impl("auto", "gpu") == "xla"
  assert dw.resolve_impl("auto", "tpu") == "xla"
  assert dw.resolve_impl("auto") in IMPLS
  for impl in IMPLS:
    assert dw.resolve_impl(impl) == impl
  with pytest.raises(ValueError, match="model.impl.depthwise must be one of"):
    dw.resolve_impl("cudnn")
  with pytest.raises(ValueError,
                     match="model.impl.depthwise='native' runs on the CPU backend only"):
    dw.resolve_impl("native", "gpu")
  # Without a usable C++ toolchain "auto" falls back to the best pure-XLA formulation.
  monkeypatch.setattr(native, "available", lambda: False)
  assert dw.resolve_impl("auto", "cpu") == "taps_vjp"


@pytest.mark.parametrize("c", [32, 48, 77])
@pytest.mark.parametrize("stride,hw", [(1, (9, 7)), (2, (8, 8)), (2, (7, 10))])
def test_native_channel_blocks_match_numpy(c, stride, hw):
  """The native kernels vectorise 32-channel blocks plus a remainder: cover both paths."""
  x, kern, g = _inputs(*hw, stride, c=c, seed=c)
  y = jax.jit(dw.depthwise_conv, static_argnums=(2, 3))(jnp.asarray(x), jnp.asarray(kern),
                                                       stride, "native")
  np.testing.assert_allclose(np.asarray(y), np_depthwise(x, kern, stride), rtol=1e-5, atol=1e-5)
  ref_dx, ref_dk = np_depthwise_grads(x, kern, stride, g)
  dx, dk = _grads("native", x, kern, g, stride, "float32")
  np.testing.assert_allclose(np.asarray(dx), ref_dx, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(dk), ref_dk, rtol=1e-5, atol=1e-4)


def test_same_padding_matches_tensorflow():
  assert dw.same_padding(8, 3, 2) == (0, 1)   # Even input, stride 2: all padding after.
  assert dw.same_padding(7, 3, 2) == (1, 1)
  assert dw.same_padding(8, 3, 1) == (1, 1)
  assert dw.same_padding(8, 1, 2) == (0, 0)


def test_bad_kernel_shape_raises():
  with pytest.raises(ValueError, match="kernel"):
    dw.depthwise_conv(jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 1)))


@pytest.mark.slow(seconds=91)  # Compiles two MobileNetV2 gradients (~30 s of CPU on a small box).
def test_full_model_logits_and_gradients_agree_across_impls():
  """MobileNetV2 0.35 @32x32: same logits (eval and train) and gradients with `taps` as with XLA.

  `native` and `taps_vjp` are compared with XLA on the whole model in tests/ops/test_impl.py
  (`test_every_formulation_computes_the_same_model`); `taps` only here.

  Train-mode batch norm over a small batch amplifies float32 round-off layer after layer (the
  last stages are 1x1 spatially, so each channel's statistics come from the batch alone): the
  taps implementations sum in XLA's order and agree bit for bit, while the native kernels sum
  in their own order and differ by ~2e-4 in the logits after ~50 such layers at batch 8 (~7e-2 at
  batch 2). Hence batch 8 and 1e-3 tolerances here; each layer is checked to 1e-5 above.
  """
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3))
  variables = jax.jit(lambda: MobileNetV2(width_multiplier=0.35, num_classes=10).init(
      jax.random.key(1), x, train=False))()

  def run(impl):
    model = MobileNetV2(width_multiplier=0.35, num_classes=10, impl=Impl(depthwise=impl),
                        dropout_rate=0.0)

    def loss(params):
      logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                              train=True, mutable=["batch_stats"])
      return jnp.sum(jnp.sin(logits)), logits

    eval_logits = model.apply(variables, x, train=False)
    (_, train_logits), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
    return eval_logits, train_logits, grads

  ref = jax.jit(lambda: run("xla"))()
  for impl in sorted(set(IMPLS) - {"xla", "native", "taps_vjp"}):
    out = jax.jit(lambda: run(impl))()
    np.testing.assert_allclose(out[0], ref[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-3, atol=1e-3)
    flat, flat_ref = jax.tree.leaves(out[2]), jax.tree.leaves(ref[2])
    assert len(flat) == len(flat_ref)
    # Global scale: some gradients are exactly zero in theory (a bias followed by a linear conv
    # and a train-mode batch norm), so per-leaf relative errors would compare round-off noise.
    scale = max(float(jnp.max(jnp.abs(b))) for b in flat_ref)
    for a, b in zip(flat, flat_ref):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-3 * scale)
