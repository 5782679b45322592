"""On-device normalisation of the uint8 batches the input pipeline emits.

The pipeline ships uint8 NHWC (4x less host->device traffic than float32 and
no host CPU spent on arithmetic); the model step calls `normalize` first.

This module lives outside `mnv2_jax.data` so that the training and evaluation steps
(`mnv2_jax.steps`) import without TensorFlow or TFDS: `mnv2_jax.data` registers a TFDS
builder on import. `mnv2_jax.data.normalize` re-exports it.
"""

import jax.numpy as jnp


def normalize(images_uint8: jnp.ndarray, dtype=jnp.float32) -> jnp.ndarray:
  """Maps uint8 [0, 255] to [-1, 1] as x / 127.5 - 1 (Keras "tf" mode).

  This is the same range as slim's inception preprocessing ((x/255 - .5) * 2).
  The arithmetic is done in float32 and only the result is cast to `dtype`, so
  bfloat16 outputs are the correctly rounded float32 values.
  """
  x = jnp.asarray(images_uint8).astype(jnp.float32)
  return (x / 127.5 - 1.0).astype(dtype)
