"""Depthwise 2-D convolution with TF "SAME" padding, in several interchangeable formulations.

Why more than one: XLA's grouped convolution (``feature_group_count = C``) is slow on CPU, and its
backward pass is a known weak spot on GPU as well (jax#13800, flax#4207). A 3x3 depthwise conv is
only nine multiply-adds per output element, so writing it as nine shifted, strided slices of the
padded input lets XLA fuse it into one loop nest.

All implementations take the same arguments and compute the same function (to float tolerance):

    y[n, i, j, c] = sum_{di, dj} x_pad[n, s*i + di, s*j + dj, c] * kernel[di, dj, 0, c]

with ``x_pad`` padded exactly as TensorFlow's "SAME" (for stride 2 on even input: 0 before, 1
after), so results match slim/Keras checkpoints.

Implementations (``IMPLEMENTATIONS``):

* ``"xla"``: ``lax.conv_general_dilated`` with ``feature_group_count = C``; JAX autodiff gives a
  grouped conv for the input gradient and a ``batch_group_count`` conv for the weight gradient.
* ``"taps"``: nine shifted (strided) slices times a per-channel scale, summed; JAX autodiff.
* ``"taps_vjp"``: the same forward with a hand-written backward (``jax.custom_vjp``): the input
  gradient is the transposed taps -- a correlation of the gradient with the flipped kernel, for
  stride > 1 done per output phase (polyphase: each of the s*s phases of ``dx`` only sees the taps
  congruent to it, so no multiply touches an inserted zero) and interleaved back; the weight
  gradient is nine ``sum(tap * dy)`` reductions accumulated in float32, emitted together so XLA
  can fuse them into one pass. Residuals are just ``x`` and the kernel.
* ``"native"`` (CPU only): the three passes as C++ XLA FFI custom calls (``ops/native``), each
  reading its inputs once; the weight gradient in particular avoids the nine shifted copies that
  XLA:CPU materialises for ``taps_vjp``. Float32 inside (other dtypes are cast). Built with the
  system C++ compiler on first use and cached. Data-parallel on multi-device meshes: each device
  runs the kernels on its batch shard, the weight gradient is all-reduced
  (``ops/native/partition.py``).

Dilation (``rate`` > 1, atrous depthwise for output strides 16 / 8): ``y`` reads
``x_pad[n, i + rate * di, j + rate * dj, c]``, SAME-padded for the dilated kernel extent
``rate * (k - 1) + 1``, stride 1 (slim's atrous rule never strides a dilated layer). ``xla``
dilates the grouped conv (``rhs_dilation``); ``taps`` and ``taps_vjp`` space their taps
``rate`` apart (forward, both gradients); the native kernels have no rate, so a dilated layer
under ``native`` runs ``taps_vjp`` instead, logged once per process.

``"auto"`` picks per backend (``mnv2_jax.ops.impl``): CPU -> ``native`` (``taps_vjp`` if no C++
compiler is available), GPU/TPU -> ``xla``. Measurements behind the choice are in
benchmarks/RESULTS.md.

The kernel layout is Flax's grouped-conv layout ``(kh, kw, 1, C)`` so parameters are identical
whichever implementation is selected.
"""

from __future__ import annotations

import functools

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from mnv2_jax.ops import impl as impl_lib
from mnv2_jax.ops.native import partition as native_partition

IMPLEMENTATIONS = impl_lib.CHOICES["depthwise"]
"""Concrete implementations; ``"auto"`` resolves to one of these per backend (``ops.impl``)."""


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
  """TF "SAME" padding (before, after) for one spatial dimension."""
  out = -(-size // stride)
  total = max((out - 1) * stride + kernel - size, 0)
  return total // 2, total - total // 2


def resolve_impl(impl: str, backend: str | None = None) -> str:
  """The concrete depthwise implementation for ``impl`` (``"auto"``: per backend, ``ops.impl``)."""
  return impl_lib.Impl(depthwise=impl).resolve(backend).depthwise


def dilated_extent(kernel: int, rate: int) -> int:
  """Spatial extent of a ``kernel``-tap filter dilated by ``rate``."""
  return rate * (kernel - 1) + 1


def _depthwise_xla(x: jax.Array, kernel: jax.Array, stride: int, rate: int = 1) -> jax.Array:
  kh, kw = (dilated_extent(k, rate) for k in kernel.shape[:2])
  pads = [same_padding(x.shape[1], kh, stride), same_padding(x.shape[2], kw, stride)]
  return lax.conv_general_dilated(
      x, kernel, window_strides=(stride, stride), padding=pads, rhs_dilation=(rate, rate),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])


def _pad_same(x: jax.Array, kh: int, kw: int, stride: int, rate: int = 1) -> jax.Array:
  """Zero-pads the spatial dims of NHWC ``x`` as TF SAME does (for the dilated extent)."""
  kh, kw = dilated_extent(kh, rate), dilated_extent(kw, rate)
  pads = (same_padding(x.shape[1], kh, stride), same_padding(x.shape[2], kw, stride))
  return jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _tap(xp: jax.Array, di: int, dj: int, ho: int, wo: int, stride: int) -> jax.Array:
  """The (ho, wo) window of padded ``xp`` that kernel tap (di, dj) multiplies."""
  n, _, _, c = xp.shape
  return lax.slice(xp, (0, di, dj, 0),
                   (n, di + (ho - 1) * stride + 1, dj + (wo - 1) * stride + 1, c),
                   (1, stride, stride, 1))


def _depthwise_taps(x: jax.Array, kernel: jax.Array, stride: int, rate: int = 1) -> jax.Array:
  _, h, w, _ = x.shape
  kh, kw = kernel.shape[:2]
  xp = _pad_same(x, kh, kw, stride, rate)
  ho, wo = -(-h // stride), -(-w // stride)
  out = None
  for di in range(kh):
    for dj in range(kw):
      term = _tap(xp, rate * di, rate * dj, ho, wo, stride) * kernel[di, dj, 0]
      out = term if out is None else out + term
  return out


def _input_grad(g: jax.Array, kernel: jax.Array, x_shape: tuple[int, ...],
                stride: int, rate: int = 1) -> jax.Array:
  """Transpose of the taps forward w.r.t. ``x``: scatter ``g * k[di, dj]`` back to each tap.

  Polyphase form: the padded-input row ``p = stride * q + r`` only receives taps ``di`` with
  ``di = r (mod stride)``, from output row ``i = q - (di - r) // stride``. So phase ``(r, t)`` is
  a small stride-1 correlation of ``g`` (zero-padded in front) with those taps, and the phases
  are interleaved by a stack + reshape. For stride 1 there is one phase: a correlation of the
  padded gradient with the flipped kernel, its taps ``rate`` apart (dilation needs stride 1).
  """
  n, h, w, c = x_shape
  _, ho, wo, _ = g.shape
  kh, kw = kernel.shape[:2]
  (pt, _) = same_padding(h, dilated_extent(kh, rate), stride)
  (pl, _) = same_padding(w, dilated_extent(kw, rate), stride)
  # Phase grid covering padded rows [0, stride * qh) and columns [0, stride * qw).
  qh, qw = -(-(pt + h) // stride), -(-(pl + w) // stride)
  # Largest backward shift of a phase.
  sh, sw = (kh - 1) // stride * rate, (kw - 1) // stride * rate
  # gp[a, b] = g[a - sh, b - sw], zero outside; long enough for every phase's window.
  gp = jnp.pad(g, ((0, 0), (sh, max(qh - ho, 0)), (sw, max(qw - wo, 0)), (0, 0)))
  phases = []
  for r in range(stride):
    row = []
    for t in range(stride):
      acc = None
      for di in range(r, kh, stride):
        for dj in range(t, kw, stride):
          a, b = sh - (di - r) // stride * rate, sw - (dj - t) // stride * rate
          term = lax.slice(gp, (0, a, b, 0), (n, a + qh, b + qw, c)) * kernel[di, dj, 0]
          acc = term if acc is None else acc + term
      if acc is None:  # Kernel smaller than stride: this phase gets nothing.
        acc = jnp.zeros((n, qh, qw, c), g.dtype)
      row.append(acc)
    phases.append(row)
  if stride == 1:
    dxp = phases[0][0]
  else:
    # (n, qh, r, qw, t, c) -> (n, stride * qh, stride * qw, c) interleaves the phases.
    dxp = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)
    dxp = dxp.reshape(n, stride * qh, stride * qw, c)
  return lax.slice(dxp, (0, pt, pl, 0), (n, pt + h, pl + w, c))


def _weight_grad(x: jax.Array, g: jax.Array, kernel_shape: tuple[int, ...],
                 stride: int, rate: int = 1) -> jax.Array:
  """dk[di, dj, 0, c] = sum_{n, i, j} tap_{di, dj}[n, i, j, c] * g[n, i, j, c], float32 sums."""
  kh, kw = kernel_shape[:2]
  _, ho, wo, _ = g.shape
  xp = _pad_same(x, kh, kw, stride, rate)
  g32 = g.astype(jnp.float32)
  sums = [jnp.sum(_tap(xp, rate * di, rate * dj, ho, wo, stride).astype(jnp.float32) * g32,
                  axis=(0, 1, 2))
          for di in range(kh) for dj in range(kw)]
  return jnp.stack(sums).reshape(kernel_shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise_taps_vjp(x: jax.Array, kernel: jax.Array, stride: int, rate: int) -> jax.Array:
  return _depthwise_taps(x, kernel, stride, rate)


def _taps_vjp_fwd(x, kernel, stride, rate):
  return _depthwise_taps(x, kernel, stride, rate), (x, kernel)


def _taps_vjp_bwd(stride, rate, res, g):
  x, kernel = res
  dx = _input_grad(g, kernel, x.shape, stride, rate).astype(x.dtype)
  dk = _weight_grad(x, g, kernel.shape, stride, rate).astype(kernel.dtype)
  return dx, dk


_depthwise_taps_vjp.defvjp(_taps_vjp_fwd, _taps_vjp_bwd)


def _ffi(target: str, out_shape: tuple[int, ...], a: jax.Array, b: jax.Array, stride: int,
         pads: tuple[int, int]) -> jax.Array:
  call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(out_shape, jnp.float32))
  return call(a.astype(jnp.float32), b.astype(jnp.float32), stride=np.int64(stride),
              pad_top=np.int64(pads[0]), pad_left=np.int64(pads[1]))


# The three passes, each data-parallel over the batch on SPMD meshes (ops/native/partition.py).
# Static arguments first; output shapes come from the (per-shard) operands.
_native_forward = native_partition.batch_parallel(
    lambda stride, pads, x, k: _ffi(
        "Mnv2DepthwiseForward",
        (x.shape[0], -(-x.shape[1] // stride), -(-x.shape[2] // stride), x.shape[3]),
        x, k, stride, pads),
    num_static=2, batched=(True, False), results=("batch",),
    rule="b h w c, i j k l -> b m n o")
_native_input_grad = native_partition.batch_parallel(
    lambda stride, pads, x_hw, g, k: _ffi(
        "Mnv2DepthwiseInputGrad", (g.shape[0], *x_hw, g.shape[3]), g, k, stride, pads),
    num_static=3, batched=(True, False), results=("batch",),
    rule="b h w c, i j k l -> b m n o")
_native_weight_grad = native_partition.batch_parallel(
    lambda stride, pads, k_shape, x, g: _ffi(
        "Mnv2DepthwiseWeightGrad", k_shape, x, g, stride, pads),
    num_static=3, batched=(True, True), results=("sum",),
    rule="b h w c, b m n o -> i j k l")


def _native_pads(x_shape, kernel_shape, stride) -> tuple[int, int]:
  return (same_padding(x_shape[1], kernel_shape[0], stride)[0],
          same_padding(x_shape[2], kernel_shape[1], stride)[0])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise_native(x: jax.Array, kernel: jax.Array, stride: int,
                      partition: str) -> jax.Array:
  y = _native_forward(stride, _native_pads(x.shape, kernel.shape, stride), x, kernel,
                      partition=partition)
  return y.astype(x.dtype)


def _native_fwd(x, kernel, stride, partition):
  return _depthwise_native(x, kernel, stride, partition), (x, kernel)


def _native_bwd(stride, partition, res, g):
  x, kernel = res
  pads = _native_pads(x.shape, kernel.shape, stride)
  dx = _native_input_grad(stride, pads, x.shape[1:3], g, kernel, partition=partition)
  dk = _native_weight_grad(stride, pads, kernel.shape, x, g, partition=partition)
  return dx.astype(x.dtype), dk.astype(kernel.dtype)


_depthwise_native.defvjp(_native_fwd, _native_bwd)


_NOTED_NATIVE_RATE = []


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int = 1, impl: str = "auto",
                   partition: str = "sharded", rate: int = 1) -> jax.Array:
  """Depthwise conv of NHWC ``x`` with a ``(kh, kw, 1, C)`` kernel, TF SAME padding.

  ``impl``: one of ``IMPLEMENTATIONS`` or ``"auto"``; ``partition``: how the native calls are
  partitioned on a multi-device mesh (``ops.impl``: ``"sharded"`` or ``"gathered"``);
  ``rate``: dilation (module docstring; needs ``stride == 1``).
  """
  if kernel.ndim != 4 or kernel.shape[2] != 1 or kernel.shape[3] != x.shape[-1]:
    raise ValueError(
        f"depthwise kernel must have shape (kh, kw, 1, {x.shape[-1]}), got {kernel.shape}")
  if rate < 1 or (rate > 1 and stride != 1):
    raise ValueError(f"depthwise rate must be >= 1, and > 1 only with stride 1; got rate "
                     f"{rate}, stride {stride}")
  impl = resolve_impl(impl)
  if impl == "native" and rate > 1:
    if not _NOTED_NATIVE_RATE:
      _NOTED_NATIVE_RATE.append(True)
      logging.info("depthwise: the native kernels have no dilation; dilated (rate > 1) "
                   "layers run impl='taps_vjp' (same function)")
    impl = "taps_vjp"
  if impl == "xla":
    return _depthwise_xla(x, kernel, stride, rate)
  if impl == "taps_vjp":
    return _depthwise_taps_vjp(x, kernel, stride, rate)
  if impl == "native":
    return _depthwise_native(x, kernel, stride, partition)
  return _depthwise_taps(x, kernel, stride, rate)
