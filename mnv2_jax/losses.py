"""Classification loss and top-k correctness, with padded-example masks.

The loss follows slim's ``tf.compat.v1.losses.softmax_cross_entropy`` with
``label_smoothing=a``: targets ``one_hot * (1 - a) + a / num_classes`` (so the
true class gets ``1 - a + a/K``) and the mean over examples with non-zero
weight. Masks let the trainer and evaluator pad the last batch and still get
exact means (sum over real examples, divided by their count).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels_int: jax.Array, *,
                  num_classes: int, label_smoothing: float,
                  mask: jax.Array | None = None) -> jax.Array:
  """Mean label-smoothed softmax cross entropy over the masked-in examples.

  Args:
    logits: ``[batch, num_classes]``; computed in float32 whatever the input
      dtype (bf16 logits lose too much in log-softmax).
    labels_int: ``[batch]`` integer class ids.
    num_classes: must equal ``logits.shape[-1]``; the smoothing denominator.
    label_smoothing: ``a`` in ``y * (1 - a) + a / num_classes``; 0 disables.
    mask: optional ``[batch]`` weights (bool or 0/1); None means all ones.

  Returns:
    Scalar float32: ``sum(mask * loss) / max(sum(mask), 1)`` (0 when the
    mask is empty, instead of NaN).
  """
  if logits.shape[-1] != num_classes:
    raise ValueError(
        f"logits have {logits.shape[-1]} classes but num_classes={num_classes}")
  targets = jax.nn.one_hot(labels_int, num_classes, dtype=jnp.float32)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  per_example = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
  if mask is None:
    return jnp.mean(per_example)
  mask = mask.astype(jnp.float32)
  return jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
  """Per-example bool: is the true class among the ``k`` highest logits?

  Same semantics as ``tf.math.in_top_k``: classes tied with the true class
  count in its favour (correct iff fewer than ``k`` classes score strictly
  higher); a row with any non-finite logit, or a label outside
  ``[0, num_classes)``, is never correct. Avoids
  ``lax.top_k``, so there is no arbitrary tie-breaking by index.

  Args:
    logits: ``[batch, num_classes]``.
    labels: ``[batch]`` integer class ids.
    k: 1 for top-1, 5 for top-5.

  Returns:
    ``[batch]`` bool.
  """
  num_classes = logits.shape[-1]
  labels = labels.astype(jnp.int32)
  in_range = (labels >= 0) & (labels < num_classes)
  safe_labels = jnp.clip(labels, 0, num_classes - 1)
  true_logit = jnp.take_along_axis(logits, safe_labels[:, None], axis=-1)
  num_higher = jnp.sum(logits > true_logit, axis=-1)
  finite = jnp.all(jnp.isfinite(logits), axis=-1)
  return (num_higher < k) & finite & in_range
