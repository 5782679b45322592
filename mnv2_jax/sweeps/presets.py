"""Experiment presets: which base config, run length, seeds and grids a study uses.

A preset is named on the command line as ``--preset=NAME[:ARG]``; ``ARG`` is passed to the base
config file (``--preset=small:dataset=imagenette/160px-v2,res=128`` trains on Imagenette at 128
px; ``--preset=digits:width=0.5`` moves the digits ablation to width 0.5).

- ``paper``: ``configs/imagenet.py:schedule=released``, the recipe and length (420 epochs at
  batch 768, LR x0.98 every 2.5 epochs) that produced the 22 released checkpoints, whose
  numbers are the paper's Fig. 5 points. ``schedule=released`` is chosen over ``schedule=paper``
  (x0.98 every epoch, as the paper's text says) because the checkpoints are the numbers we can
  check against; pass ``--preset=paper:schedule=paper`` for the other reading. One seed by
  default, as in the paper (its curves are single runs); confidence intervals need ``--seeds>=2``.
- ``imagenet_short``: ``configs/imagenet_sgd.py`` (SGD + cosine, 90 epochs), 3 seeds. The
  cheapest protocol that still says something about ImageNet.
- ``small``: ``configs/small.py`` on any prepared tfds dataset (default cifar10 at 32 px),
  3 seeds. Grids use smaller resolutions.
- ``digits``: ``configs/digits.py`` (sklearn digits, width 0.35, 32 px), 12 epochs with an eval
  every epoch (for Fig. 6-style curves), 2 seeds: minutes on a laptop CPU. A demonstration of the machinery, NOT evidence about the paper.
- ``fashion``: ``configs/fashion.py`` (Fashion-MNIST from Debian's
  ``dataset-fashion-mnist``, width 0.35, 32 px, 15 epochs, evaluated every epoch on the official
  10,000 test images), 3 seeds: the CPU scale at which the paper's orderings can be tested. The
  Fig. 6a + 6b study (``mnv2-sweep experiments/fig6a_nonlinearity.py
  experiments/fig6b_shortcut.py --preset=fashion --parallel=2 --report``, 12 runs) took 87 min
  on a 2-core CPU (docs/results.md, which also says how the 15 epochs were chosen).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mnv2_jax.sweeps import combinators as C

IMAGENET_TRAIN_IMAGES = 1_281_167


@dataclasses.dataclass(frozen=True)
class Preset:
  """Everything a study needs to know about a scale of experiment."""
  name: str
  config: str                           # config file; the preset ARG becomes its ":arg"
  default_arg: str                      # used when no ARG is given
  seeds: int                            # default number of seeds (seed = 0 .. seeds-1)
  fixed: dict[str, Any]                 # overrides every run of every study gets
  widths: tuple[float, ...]             # Fig. 5 grid of MobileNetV2 width multipliers
  resolutions: tuple[int, ...]          # ... times these resolutions
  extra_points: tuple[tuple[float, int], ...]   # plus these (width, resolution) points
  v1_widths: tuple[float, ...]          # MobileNetV1 comparator widths
  v1_resolutions: tuple[int, ...]       # ... times these resolutions
  train_images: int | None              # images per epoch, for compute estimates
  description: str

  def base_config(self, arg: str | None = None) -> str:
    arg = self.default_arg if arg is None else arg
    return f"{self.config}:{arg}" if arg else self.config

  def seed_sweep(self, seeds: int | None = None) -> list[dict[str, Any]]:
    n = self.seeds if seeds is None else seeds
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
      raise ValueError(f"--seeds must be an integer >= 1, got {n!r}")
    return C.sweep("seed", range(n))

  def v2_grid(self) -> list[dict[str, Any]]:
    """Fig. 5's MobileNetV2 points: widths x resolutions, then the extra points."""
    grid = C.product(C.sweep("model.width_multiplier", self.widths),
                     C.sweep("input.resolution", self.resolutions))
    extra = C.zipit(C.sweep("model.width_multiplier", [w for w, _ in self.extra_points]),
                    C.sweep("input.resolution", [r for _, r in self.extra_points]))
    return C.chain(grid, extra)

  def v1_grid(self) -> list[dict[str, Any]]:
    return C.product(C.fixed({"model.name": "mobilenet_v1"}),
                     C.sweep("model.width_multiplier", self.v1_widths),
                     C.sweep("input.resolution", self.v1_resolutions))


_PAPER_GRID = dict(widths=(0.35, 0.5, 0.75, 1.0), resolutions=(96, 128, 160, 192, 224),
                   extra_points=((1.4, 224),), v1_widths=(0.25, 0.5, 0.75, 1.0),
                   v1_resolutions=(128, 160, 192, 224))

PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper", "configs/imagenet.py", "schedule=released", seeds=1, fixed={},
        train_images=IMAGENET_TRAIN_IMAGES,
        description="ImageNet, paper/released-checkpoint recipe, 420 epochs, 1 seed",
        **_PAPER_GRID),
    "imagenet_short": Preset(
        "imagenet_short", "configs/imagenet_sgd.py", "", seeds=3, fixed={},
        train_images=IMAGENET_TRAIN_IMAGES,
        description="ImageNet, SGD + cosine, 90 epochs, 3 seeds", **_PAPER_GRID),
    "small": Preset(
        "small", "configs/small.py", "dataset=cifar10", seeds=3, fixed={},
        widths=(0.35, 0.5, 0.75, 1.0), resolutions=(32, 64, 96, 128, 160),
        extra_points=((1.4, 160),), v1_widths=(0.25, 0.5, 0.75, 1.0),
        v1_resolutions=(64, 96, 128, 160), train_images=50_000,
        description="a small tfds dataset (default cifar10), 100 epochs, 3 seeds"),
    "digits": Preset(
        "digits", "configs/digits.py", "", seeds=2,
        fixed={"train.num_epochs": 12.0, "train.eval_every_epochs": 1.0},  # Fig. 6 curves
        widths=(0.35, 0.5, 0.75, 1.0), resolutions=(32, 48, 64), extra_points=((1.4, 64),),
        v1_widths=(0.25, 0.5, 0.75, 1.0), v1_resolutions=(48, 64), train_images=1_437,
        description="sklearn digits on CPU, 12 epochs, 2 seeds (machinery demo, not evidence)"),
    "fashion": Preset(
        "fashion", "configs/fashion.py", "", seeds=3, fixed={},
        widths=(0.35, 0.5, 0.75, 1.0), resolutions=(32, 48), extra_points=((1.4, 48),),
        v1_widths=(0.25, 0.5, 0.75, 1.0), v1_resolutions=(32, 48), train_images=55_000,
        description="Fashion-MNIST on CPU, width 0.35, 32 px, 15 epochs, 3 seeds"),
    # Dense heads (docs/dense_heads.md). Width / resolution grids are the heads' own points.
    "coco": Preset(
        "coco", "configs/ssdlite_coco.py", "", seeds=1, fixed={},
        widths=(0.35, 0.5, 0.75, 1.0), resolutions=(320,), extra_points=(), v1_widths=(1.0,),
        v1_resolutions=(320,), train_images=118_287,
        description="SSDLite on COCO 2017 at 320, the paper's recipe (~40 epochs), 1 seed"),
    "voc": Preset(
        "voc", "configs/deeplabv3_voc.py", "dataset=voc2012_segmentation/trainaug", seeds=1,
        fixed={}, widths=(0.5, 1.0), resolutions=(513,), extra_points=(), v1_widths=(1.0,),
        v1_resolutions=(513,), train_images=10_582,
        description="Mobile DeepLabv3 on VOC 2012 train_aug, OS 16, crops 513, 1 seed"),
    "scenes_det": Preset(
        "scenes_det", "configs/scenes.py", "task=detection", seeds=2, fixed={},
        widths=(0.35, 0.5), resolutions=(96, 160), extra_points=(), v1_widths=(0.5,),
        v1_resolutions=(96,), train_images=2_000,
        description="SSDLite on digit_scenes (CPU-scale check, NOT COCO), 2 seeds"),
    "scenes_seg": Preset(
        "scenes_seg", "configs/scenes.py", "task=segmentation", seeds=2,
        fixed={"head.output_stride": 8}, widths=(0.35, 0.5), resolutions=(64,),
        extra_points=(), v1_widths=(0.5,), v1_resolutions=(64,), train_images=2_000,
        description="DeepLabv3 (OS 8) on digit_scenes (CPU-scale check, NOT VOC), 2 seeds"),
}


def parse_preset(spec: str) -> tuple[Preset, str | None]:
  """``"small:dataset=cifar100"`` -> (PRESETS["small"], "dataset=cifar100")."""
  name, _, arg = spec.partition(":")
  if name not in PRESETS:
    raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
  return PRESETS[name], (arg if arg else None)


def select(*names: str) -> dict[str, Preset]:
  """The presets a study supports, by name (what each experiment file exports as PRESETS)."""
  return {n: PRESETS[n] for n in names}
