"""Validated, immutable view of the `config.input` section.

The trainer passes a `ml_collections.ConfigDict`; every data entry point turns
it into an `InputOptions` first so that a typo or an out-of-range value fails
immediately with a message naming the field and the allowed values, instead
of deep inside a tf.data graph.
"""

import dataclasses
from typing import Any

AUGMENTS = ("inception_crop_flip", "pad_crop", "pad_crop_flip", "none")
SYNTHETIC = "synthetic"

@dataclasses.dataclass(frozen=True)
class InputOptions:
  """The input fields, checked. See `from_config` for their meaning.

  Attributes:
    dataset: TFDS name (optionally "name/config" or "name:version"), or
      "synthetic".
    data_dir: TFDS data directory; None = TFDS default (~/tensorflow_datasets).
    manual_dir: directory holding manual downloads (imagenet2012 tars; the Fashion-MNIST
      IDX files of `fashion_mnist_local`); None = `<data_dir>/downloads/manual`
      (fashion_mnist_local: Debian's /usr/share/datasets/fashion-mnist).
    train_split: TFDS split read for training.
    eval_split: TFDS split read for evaluation.
    resolution: output height = width, pixels.
    augment: one of AUGMENTS.
    crop_area_min: smallest crop area fraction of "inception_crop_flip".
    eval_crop: central-crop fraction of each side before the eval resize.
    cache: keep the process's raw (encoded) records in memory.
    num_parallel_calls: decode/augment parallelism, -1 = tf.data AUTOTUNE.
    prefetch: batches prefetched, -1 = AUTOTUNE, 0 = none.
    synthetic_num_classes: label range of the synthetic dataset.
    synthetic_num_examples: size of the synthetic dataset (train and eval).
  """
  dataset: str
  data_dir: str | None = None
  manual_dir: str | None = None
  train_split: str = "train"
  eval_split: str = "validation"
  resolution: int = 224
  augment: str = "inception_crop_flip"
  crop_area_min: float = 0.05
  eval_crop: float = 0.875
  cache: bool = False
  num_parallel_calls: int = -1
  prefetch: int = 2
  synthetic_num_classes: int = 1000
  synthetic_num_examples: int = 1024

  @property
  def is_synthetic(self) -> bool:
    return self.dataset == SYNTHETIC


def defaults() -> dict[str, Any]:
  """The fields' defaults (declared once, above; `configs.common.input_config` reads them)."""
  return {f.name: f.default for f in dataclasses.fields(InputOptions)
          if f.default is not dataclasses.MISSING}


def _get(cfg: Any, name: str):
  """A field of `cfg` (ConfigDict, dict or object); its default when absent."""
  default = defaults().get(name)
  if hasattr(cfg, "get"):
    return cfg.get(name, default)
  return getattr(cfg, name, default)


def _fail(name: str, value, allowed: str):
  raise ValueError(f"config.input.{name}={value!r} is invalid; allowed: "
                   f"{allowed}.")


def _int(cfg, name: str, low: int, allowed: str) -> int:
  value = _get(cfg, name)
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    _fail(name, value, allowed)
  return value


def from_config(cfg: Any) -> InputOptions:
  """Validates a `config.input` ConfigDict (or any attribute/dict-like)."""
  if isinstance(cfg, InputOptions):
    return cfg
  dataset = _get(cfg, "dataset")
  if not isinstance(dataset, str) or not dataset:
    _fail("dataset", dataset, "a TFDS name such as 'sklearn_digits', "
          "'imagenet2012', 'cifar10', 'imagenette/160px-v2', or 'synthetic'")
  for name in ("data_dir", "manual_dir"):
    value = _get(cfg, name)
    if value is not None and not isinstance(value, str):
      _fail(name, value, "a path string or None")
  for name in ("train_split", "eval_split"):
    value = _get(cfg, name)
    if not isinstance(value, str) or not value:
      _fail(name, value, "a TFDS split name such as 'train', 'test', "
            "'validation' or 'train[:90%]'")
  augment = _get(cfg, "augment")
  if augment not in AUGMENTS:
    _fail("augment", augment, " | ".join(repr(a) for a in AUGMENTS))
  crop_area_min = _get(cfg, "crop_area_min")
  if not isinstance(crop_area_min, (int, float)) or not 0 < crop_area_min <= 1:
    _fail("crop_area_min", crop_area_min, "a float in (0, 1]")
  eval_crop = _get(cfg, "eval_crop")
  if not isinstance(eval_crop, (int, float)) or not 0 < eval_crop <= 1:
    _fail("eval_crop", eval_crop, "a float in (0, 1]")
  cache = _get(cfg, "cache")
  if not isinstance(cache, bool):
    _fail("cache", cache, "True or False")
  num_parallel_calls = _int(cfg, "num_parallel_calls", -1,
                            "-1 (AUTOTUNE) or an int >= 1")
  if num_parallel_calls == 0:
    _fail("num_parallel_calls", 0, "-1 (AUTOTUNE) or an int >= 1")
  return InputOptions(
      dataset=dataset,
      data_dir=_get(cfg, "data_dir"),
      manual_dir=_get(cfg, "manual_dir"),
      train_split=_get(cfg, "train_split"),
      eval_split=_get(cfg, "eval_split"),
      resolution=_int(cfg, "resolution", 1, "an int >= 1"),
      augment=augment,
      crop_area_min=float(crop_area_min),
      eval_crop=float(eval_crop),
      cache=cache,
      num_parallel_calls=num_parallel_calls,
      prefetch=_int(cfg, "prefetch", -1, "-1 (AUTOTUNE) or an int >= 0"),
      synthetic_num_classes=_int(cfg, "synthetic_num_classes", 1,
                                 "an int >= 1"),
      synthetic_num_examples=_int(cfg, "synthetic_num_examples", 1,
                                  "an int >= 1"),
  )
