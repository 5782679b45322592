"""Box codes relative to anchors: the TF Object Detection API's `FasterRcnnBoxCoder` (jnp).

tensorflow/models research/object_detection/box_coders/faster_rcnn_box_coder.py, with the
`scale_factors` (y, x, h, w) = (10, 10, 5, 5) of the SSD configs. For an anchor with centre
(ya, xa) and size (ha, wa) and a box with centre (y, x) and size (h, w):

  ty = 10 (y - ya) / ha,  tx = 10 (x - xa) / wa,  th = 5 log(h / ha),  tw = 5 log(w / wa)

Codes are ordered (ty, tx, th, tw), as the box predictor emits them. Both the anchor and the box
heights/widths get `EPSILON = 1e-8` added before dividing / taking the log in `encode` (TF does
this so a zero-size box gives a large finite code instead of -inf); `decode` adds no epsilon,
as in TF, so decode(encode(b)) equals b up to ~1e-8 relative. Boxes are corner
(ymin, xmin, ymax, xmax), any leading batch dimensions broadcast against the anchors [..., 4].
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

EPSILON = 1e-8
SCALE_FACTORS = (10.0, 10.0, 5.0, 5.0)


def _center_size(boxes: jnp.ndarray):
  ymin, xmin, ymax, xmax = jnp.moveaxis(boxes, -1, 0)
  h = ymax - ymin
  w = xmax - xmin
  return ymin + 0.5 * h, xmin + 0.5 * w, h, w


def encode(boxes: jnp.ndarray, anchors: jnp.ndarray,
           scale_factors: Sequence[float] | None = SCALE_FACTORS) -> jnp.ndarray:
  """Corner boxes [..., N, 4] -> codes (ty, tx, th, tw) [..., N, 4] w.r.t. anchors [N, 4]."""
  yc_a, xc_a, ha, wa = _center_size(jnp.asarray(anchors))
  yc, xc, h, w = _center_size(jnp.asarray(boxes))
  ha, wa, h, w = ha + EPSILON, wa + EPSILON, h + EPSILON, w + EPSILON
  ty = (yc - yc_a) / ha
  tx = (xc - xc_a) / wa
  th = jnp.log(h / ha)
  tw = jnp.log(w / wa)
  if scale_factors is not None:
    sy, sx, sh, sw = scale_factors
    ty, tx, th, tw = ty * sy, tx * sx, th * sh, tw * sw
  return jnp.stack([ty, tx, th, tw], axis=-1)


def decode(codes: jnp.ndarray, anchors: jnp.ndarray,
           scale_factors: Sequence[float] | None = SCALE_FACTORS) -> jnp.ndarray:
  """Codes (ty, tx, th, tw) [..., N, 4] -> corner boxes [..., N, 4] w.r.t. anchors [N, 4]."""
  yc_a, xc_a, ha, wa = _center_size(jnp.asarray(anchors))
  ty, tx, th, tw = jnp.moveaxis(jnp.asarray(codes), -1, 0)
  if scale_factors is not None:
    sy, sx, sh, sw = scale_factors
    ty, tx, th, tw = ty / sy, tx / sx, th / sh, tw / sw
  w = jnp.exp(tw) * wa
  h = jnp.exp(th) * ha
  yc = ty * ha + yc_a
  xc = tx * wa + xc_a
  return jnp.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
