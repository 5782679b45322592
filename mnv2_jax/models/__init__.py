"""Flax MobileNet models built from `mnv2_jax.spec`."""

from mnv2_jax.models.mobilenet import MODELS, MobileNetV1, MobileNetV2

__all__ = ["MODELS", "MobileNetV1", "MobileNetV2"]
