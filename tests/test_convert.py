"""Keras MobileNetV2 -> mnv2_jax conversion: identical logits prove identical architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mnv2_jax.convert import from_keras
from mnv2_jax.models import MobileNetV2
from tests.keras_helpers import randomised_keras


@pytest.mark.parametrize("alpha, resolution", [(0.35, 96), (1.0, 128), (1.4, 96)])
def test_logits_match_keras(alpha, resolution):
  keras_model = randomised_keras(alpha, resolution, seed=int(alpha * 100))
  x = np.random.default_rng(0).uniform(-1, 1, (2, resolution, resolution, 3)).astype(np.float32)
  expected = np.asarray(keras_model(x, training=False))
  assert np.abs(expected).max() > 0.1     # not a degenerate all-zero comparison
  model = MobileNetV2(width_multiplier=alpha, num_classes=1000)
  variables = from_keras(keras_model, model)
  got = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(got), expected, rtol=0, atol=1e-4)
  # Without `model=`, the width multiplier is recovered from the layer widths.
  inferred = from_keras(keras_model)
  jax.tree.map(np.testing.assert_array_equal, inferred, variables)


def test_wrong_width_is_reported():
  keras_model = randomised_keras(0.35, 96, seed=1)
  with pytest.raises(ValueError, match="width_multiplier"):
    from_keras(keras_model, MobileNetV2(width_multiplier=0.5))


def test_keras_import_refuses_a_5x5_model_before_reading_weights():
  with pytest.raises(ValueError, match=r"model.depthwise_kernel=3 only; this model has "
                                       r"depthwise_kernel=5"):
    from_keras(object(), MobileNetV2(width_multiplier=0.35, depthwise_kernel=5))
