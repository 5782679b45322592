"""Per-pixel softmax cross-entropy with an ignore label, and logit upsampling (DeepLab's loss).

DeepLab (deeplab/utils/train_utils.py, `add_softmax_cross_entropy_loss_for_each_scale`) computes
the loss at the *label* resolution: with `upsample_logits=True` (its default, used for every
published model) the output-stride-16 logits [B, h, w, C] are bilinearly upsampled to the label
size [B, H, W] first; the alternative (`upsample_logits=False`) downsamples the labels with
nearest neighbour instead. Pixels whose label is `ignore_label` (255: VOC's object boundaries
and the padding the augmentation adds) get weight 0, and `tf.losses.softmax_cross_entropy`'s
default reduction (SUM_BY_NONZERO_WEIGHTS) divides by the number of non-ignored pixels of the
whole batch -- a mean over valid pixels, not a mean of per-image means. `pixel_cross_entropy`
is that loss; it also returns the valid-pixel count, so a data-parallel step can weight the
per-device means (sum(loss_i * n_i) / sum(n_i)) and get exactly the global mean.

The align_corners difference (stated, and selectable):
  DeepLab calls TF1's `tf.image.resize_bilinear(..., align_corners=True)`: output pixel i samples
  input coordinate i * (h - 1) / (H - 1), so the corner pixels of input and output coincide.
  `jax.image.resize(..., "bilinear")` (and TF2's `tf.image.resize`) use half-pixel centres
  instead: i samples (i + 0.5) * h / H - 0.5, clamped at the border. For 33 -> 513 (OS16 at
  crop 513) the two sample grids agree at the centre and drift apart towards the borders, by
  up to 0.45 input pixels (~7 output pixels). `upsample_logits(..., align_corners=True)`
  reproduces TF1 (through `jax.image.scale_and_translate`; equal to TF's kernel to float
  rounding, tested); the default `False` is the plain `jax.image.resize`. A model
  trained with one convention should be evaluated with the same one. DeepLab pairs
  align_corners=True with crop sizes of the form k * output_stride + 1 (513 = 32 * 16 + 1),
  for which the align-corners grid maps every feature pixel onto an exact label pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

IGNORE_LABEL = 255


def upsample_logits(logits: jax.Array, size: Sequence[int], *,
                    align_corners: bool = False) -> jax.Array:
  """Bilinearly resizes logits [B, h, w, C] to [B, H, W, C] (`size` = (H, W)).

  align_corners=False: `jax.image.resize(..., "bilinear", antialias=False)` (half-pixel
  centres, TF2's `tf.image.resize`). align_corners=True: TF1's `resize_bilinear(...,
  align_corners=True)`, which is what DeepLab's training loss uses (module docstring). The
  arithmetic is float32 whatever the logits' dtype (bfloat16 logits would otherwise be
  interpolated in bfloat16); the result is float32.
  """
  logits = jnp.asarray(logits).astype(jnp.float32)
  if logits.ndim != 4:
    raise ValueError(f"logits must be [B, h, w, C], got shape {logits.shape}")
  out_h, out_w = (int(s) for s in size)
  batch, _, _, channels = logits.shape
  shape = (batch, out_h, out_w, channels)
  if not align_corners:
    return jax.image.resize(logits, shape, "bilinear", antialias=False)
  # Output pixel i samples input i * (in - 1) / (out - 1). In scale_and_translate's
  # half-pixel frame (input = (i + 0.5 - t) / s - 0.5) that is s = (out - 1) / (in - 1) and
  # t = (1 - s) / 2. An output side of 1 takes input row/column 0, as TF1 does; an input side
  # of 1 is broadcast (s = out, t = 0 keeps every sample on that one pixel).
  if out_h == 1:
    logits = logits[:, :1]
  if out_w == 1:
    logits = logits[:, :, :1]
  scales, translations = [], []
  for n_in, n_out in ((logits.shape[1], out_h), (logits.shape[2], out_w)):
    if n_out == 1:
      scale, translation = 1.0, 0.0
    elif n_in == 1:
      scale, translation = float(n_out), 0.0
    else:
      scale = (n_out - 1) / (n_in - 1)
      translation = 0.5 * (1.0 - scale)
    scales.append(scale)
    translations.append(translation)
  return jax.image.scale_and_translate(
      logits, shape, (1, 2), jnp.asarray(scales, jnp.float32),
      jnp.asarray(translations, jnp.float32), "linear", antialias=False)


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array, *,
                        ignore_label: int = IGNORE_LABEL) -> tuple[jax.Array, jax.Array]:
  """Mean softmax cross-entropy over the non-ignored pixels of a batch.

  Args:
    logits: [B, H, W, C], any float dtype (computed in float32), at the label resolution
      (call `upsample_logits` first; a mismatch raises rather than silently broadcasting).
    labels: [B, H, W] integer class ids (uint8 from the input pipeline is fine).
    ignore_label: pixels with this label contribute nothing. Labels outside [0, C) are ignored
      as well (DeepLab would give them an all-zero one-hot target: no loss, but a place in the
      denominator; the input pipeline only emits 0..20 and 255). Every label is clamped into
      [0, C) before the gather, so 255 never indexes out of range.

  Returns:
    (loss, num_valid): the float32 mean over valid pixels (0.0 when there are none) and the
    int32 number of valid pixels.
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if logits.ndim != 4 or labels.shape != logits.shape[:3]:
    raise ValueError(f"logits [B, H, W, C] and labels [B, H, W] must agree: got {logits.shape} "
                     f"and {labels.shape} (upsample_logits brings logits to the label size)")
  num_classes = logits.shape[-1]
  labels = labels.astype(jnp.int32)
  valid = (labels != ignore_label) & (labels >= 0) & (labels < num_classes)
  safe = jnp.clip(labels, 0, num_classes - 1)
  per_pixel = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), safe)
  num_valid = jnp.sum(valid, dtype=jnp.int32)
  total = jnp.sum(jnp.where(valid, per_pixel, 0.0))
  return total / jnp.maximum(num_valid, 1).astype(jnp.float32), num_valid
