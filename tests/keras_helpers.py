"""Keras MobileNetV2 models for conversion tests (tests/test_convert.py, test_backbone_init.py)."""

import keras  # a pinned dependency (pyproject.toml): a missing keras is an error, not a skip
import numpy as np


def randomised_keras(alpha: float, resolution: int, seed: int = 0):
  """Keras MobileNetV2 with random kernels AND random batch-norm statistics (not 0/1), so a
  conversion that drops or swaps a statistic changes the logits."""
  model = keras.applications.MobileNetV2(
      input_shape=(resolution, resolution, 3), alpha=alpha, weights=None,
      classifier_activation=None)
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      c = layer.get_weights()[0].shape[0]
      layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c),
                         rng.normal(0, 0.2, c), rng.uniform(0.5, 1.5, c)])
  return model
