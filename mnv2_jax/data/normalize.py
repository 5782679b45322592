"""On-device normalisation of the uint8 batches the input pipeline emits.

Defined in `mnv2_jax.image_norm` (no TensorFlow on its import path, so `mnv2_jax.steps` can
use it without importing this package); re-exported here for the input side's users.
"""

from mnv2_jax.image_norm import normalize

__all__ = ["normalize"]
