"""Input of dense runs: which pipeline reads `config.input.dataset` for the run's task.

- detection: any TFDS builder with coco/2017's features (`coco/2017`, `digit_scenes`) through
  `data.coco_detection` with `data.det_preprocessing.DetAugment`;
- segmentation: `voc2012_segmentation[/trainaug]` through `data.seg_pipeline` with
  `data.seg_preprocessing.SegAugment` (DeepLab's scale / crop / flip), or `digit_scenes`
  (its masks; classes = digits + background) through the detection pipeline, whose flip and
  resize also move the mask (no random scale or SSD crop: `dense_augment.ssd_random_crop`
  only).

`config.dense_augment` holds the augmentation's fields with their declared defaults
(`augment_config`); its size is always `config.input.resolution`, declared there once.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections

from mnv2_jax.data import coco_detection
from mnv2_jax.data import datasets
from mnv2_jax.data import det_preprocessing
from mnv2_jax.data import pipeline
from mnv2_jax.data import seg_pipeline
from mnv2_jax.data import seg_preprocessing

_SIZE_FIELDS = ("resolution", "crop_size")
_AUGMENTS = {"detection": det_preprocessing.DetAugment,
             "segmentation": seg_preprocessing.SegAugment}


def augment_config(task: str, resolution: int) -> ml_collections.ConfigDict:
  del resolution  # The size is config.input.resolution's.
  cls = _AUGMENTS[task]
  return ml_collections.ConfigDict({f.name: f.default for f in dataclasses.fields(cls)
                                    if f.name not in _SIZE_FIELDS})


def _uses_scenes_pipeline(config, task: str) -> bool:
  return task == "detection" or _is_box_dataset(config)


def _is_box_dataset(config) -> bool:
  return not config.input.dataset.startswith("voc2012_segmentation")


def _det_augment(config, task: str) -> det_preprocessing.DetAugment:
  fields = dict(config.dense_augment)
  if task == "segmentation":  # digit_scenes masks through the detection pipeline
    fields = {"random_flip": fields.get("flip", True), "ssd_random_crop": False}
  try:
    return det_preprocessing.DetAugment(resolution=config.input.resolution, **fields).check()
  except (TypeError, ValueError) as e:
    raise ValueError(f"dense_augment: {e}") from e


def _seg_augment(config) -> seg_preprocessing.SegAugment:
  try:
    return seg_preprocessing.SegAugment(crop_size=config.input.resolution,
                                        **dict(config.dense_augment)).check()
  except (TypeError, ValueError) as e:
    raise ValueError(f"dense_augment: {e}") from e


def _builder(config, task: str):
  cfg = config.input
  if _uses_scenes_pipeline(config, task):
    return coco_detection.get_builder(cfg.dataset, cfg.data_dir)
  return seg_pipeline.get_builder(cfg.dataset, cfg.data_dir, cfg.manual_dir)


def info(config) -> pipeline.DatasetInfo:
  """Class count and split sizes; the dataset must be prepared (or preparable offline)."""
  from mnv2_jax.dense import tasks  # pylint: disable=g-import-not-at-top
  task = tasks.task_of(config)
  builder = _builder(config, task)
  if task == "detection":
    _det_augment(config, task)
    classes = coco_detection.num_classes(builder)
  elif _is_box_dataset(config):
    _det_augment(config, task)
    classes = coco_detection.num_classes(builder) + 1   # + background
  else:
    _seg_augment(config)
    classes = seg_pipeline.num_classes(builder)
  cfg = config.input
  return pipeline.DatasetInfo(
      num_classes=classes, num_train=datasets.num_examples(builder, cfg.train_split),
      num_eval=datasets.num_examples(builder, cfg.eval_split),
      image_shape=(cfg.resolution, cfg.resolution, 3))


_KEYS = {"detection": ("image", "boxes", "classes"), "segmentation": ("image", "segmentation")}


def train_stream(config, task: str, *, start_step: int):
  """This process's training batches from `start_step` on (numpy dicts)."""
  cfg = config.input
  builder = _builder(config, task)
  common = dict(split=cfg.train_split, global_batch_size=cfg.global_batch_size,
                seed=config.seed, process_index=jax.process_index(),
                process_count=jax.process_count(), start_step=start_step)
  if _uses_scenes_pipeline(config, task):
    ds = coco_detection.make_train_dataset(builder, augment=_det_augment(config, task),
                                           cache=cfg.cache, **common)
  else:
    ds = seg_pipeline.make_train_dataset(builder, augment=_seg_augment(config), **common)
  keys = _KEYS[task]
  return ({k: b[k] for k in keys} for b in ds.as_numpy_iterator())


def eval_batches(config, task: str) -> pipeline.EvalBatches:
  """The eval split, padded and masked, re-iterable (one complete pass per `iter`)."""
  cfg = config.input
  builder = _builder(config, task)
  common = dict(split=cfg.eval_split, global_batch_size=cfg.eval_batch_size,
                process_index=jax.process_index(), process_count=jax.process_count())
  if _uses_scenes_pipeline(config, task):
    ds = coco_detection.make_eval_dataset(builder, augment=_det_augment(config, task),
                                          cache=cfg.cache, **common)
  else:
    ds = seg_pipeline.make_eval_dataset(builder, augment=_seg_augment(config), **common)
  if task == "segmentation" and _is_box_dataset(config):
    return pipeline.EvalBatches(lambda: (
        {k: b[k] for k in ("image", "segmentation", "mask")} for b in ds.as_numpy_iterator()))
  return pipeline.EvalBatches(ds.as_numpy_iterator)
