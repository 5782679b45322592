"""Flax MobileNet models built from `mnv2_jax.spec`."""

from mnv2_jax.models.mobilenet import MobileNetV1, MobileNetV2

__all__ = ["MobileNetV1", "MobileNetV2"]
