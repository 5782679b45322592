"""`mnv2-eval`: exact evaluation of a training checkpoint, or of Keras MobileNetV2 weights.

    mnv2-eval --workdir=runs/digits                      # latest checkpoint, EMA if trained with it
    mnv2-eval --workdir=runs/x --step=2000 --split=validation --raw   # non-EMA weights
    mnv2-eval --keras_weights=mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 \
        --width=1.0 --resolution=224 --dataset=imagenet2012 --data_dir=/data/tfds

Keras weights are converted by `mnv2_jax.convert.from_keras` (local .h5 only, or `none` for
random weights); ImageNet labels of tfds `imagenet2012` use the same class order as Keras.
Prints one JSON line with eval/top1, eval/top5, eval/loss and eval/count.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import jax
import ml_collections

from mnv2_jax import data
from mnv2_jax import parallel
from mnv2_jax import restore as restore_lib
from mnv2_jax import spec as spec_lib
from mnv2_jax import steps as steps_lib
from mnv2_jax import train
from mnv2_jax.models import MobileNetV2


def _checkpoint_variables(args, config):
  """The run's model (with `--inference_split`) and its restored eval variables."""
  r = restore_lib.restore(args.workdir, args.step, raw=args.raw, config=config,
                          transform=lambda m: with_split(m, args.inference_split))
  return r.model, r.variables, r.step


def _keras_variables(args):
  import keras  # pylint: disable=g-import-not-at-top
  weights = None if args.keras_weights == "none" else args.keras_weights
  if weights is not None and not os.path.exists(weights):
    raise ValueError(f"--keras_weights file {weights!r} does not exist (nothing is downloaded)")
  keras_model = keras.applications.MobileNetV2(
      input_shape=(args.resolution, args.resolution, 3), alpha=args.width, weights=weights,
      classifier_activation=None)
  from mnv2_jax.convert import from_keras  # pylint: disable=g-import-not-at-top
  model = MobileNetV2(width_multiplier=args.width, num_classes=1000)
  return with_split(model, args.inference_split), from_keras(keras_model, model)


def with_split(model, k: int):
  """`model` evaluated with `inference_split=k` (memory-efficient inference, paper §5.1; the
  variables are unchanged), or ValueError naming the flag and the allowed values."""
  if k == 1:
    return model
  try:
    return model.clone(inference_split=k)
  except ValueError as e:
    raise ValueError(f"--inference_split: {e}") from None


def check_args(args) -> None:
  """Rejects impossible flag values before anything is loaded, naming the flag and the range."""
  if args.workdir:
    restore_lib.check_workdir(args.workdir)
  if args.step is not None and args.step < 0:
    raise ValueError(f"--step must be an integer >= 0 (a saved checkpoint), got {args.step}")
  if args.batch_size is not None and args.batch_size < 1:
    raise ValueError(f"--batch_size must be an integer >= 1, got {args.batch_size}")
  if args.keras_weights:
    if not (math.isfinite(args.width) and args.width > 0):
      raise ValueError(f"--width must be a finite number > 0, got {args.width}")
    if args.resolution < spec_lib.MIN_RESOLUTION:
      raise ValueError(f"--resolution must be an integer >= {spec_lib.MIN_RESOLUTION}, got "
                       f"{args.resolution}")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="mnv2-eval", description=__doc__.splitlines()[0])
  p.add_argument("--workdir", help="training run directory (uses its config.json)")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--raw", action="store_true", help="evaluate raw weights, not the EMA")
  p.add_argument("--keras_weights", help="local Keras .h5 weights file, or 'none'")
  p.add_argument("--width", type=float, default=1.0)
  p.add_argument("--resolution", type=int, default=224)
  p.add_argument("--dataset", default=None, help="tfds dataset (default: the run's)")
  p.add_argument("--data_dir", default=None)
  p.add_argument("--split", default=None, help="split to evaluate (default: the run's eval split)")
  p.add_argument("--batch_size", type=int, default=None)
  p.add_argument("--inference_split", type=int, default=1,
                 help="compute each inverted residual in K channel groups (paper §5.1; same "
                      "weights, less memory; 1: standard)")
  args = p.parse_args(argv)
  if bool(args.workdir) == bool(args.keras_weights):
    p.error("give exactly one of --workdir or --keras_weights")
  check_args(args)

  if args.workdir:
    config = restore_lib.load_config(args.workdir)
    model, variables, step = _checkpoint_variables(args, config)
  else:
    from configs import common  # pylint: disable=g-import-not-at-top
    config = ml_collections.ConfigDict({"input": common.input_config(
        args.dataset or "imagenet2012", args.resolution, args.batch_size or 256)})
    config.input.synthetic_num_classes = 1000
    model, variables = _keras_variables(args)
    step = None
  with config.unlocked():
    if args.dataset:
      config.input.dataset = args.dataset
    if args.data_dir:
      config.input.data_dir = args.data_dir
    if args.split:
      config.input.eval_split = args.split
    if args.batch_size is not None:
      config.input.eval_batch_size = args.batch_size
  parallel.check_batch_size(config.input.eval_batch_size, "--batch_size")
  mesh = parallel.make_mesh()
  eval_step = jax.jit(steps_lib.make_eval_step(model))
  result = train.evaluate(eval_step, variables, train.eval_batches(config), mesh)
  print(json.dumps({"step": step, "split": config.input.eval_split,
                    "dataset": config.input.dataset, **result}))
  return 0


def run():
  try:
    sys.exit(main())
  except (ValueError, data.DatasetNotPreparedError) as e:
    print(f"mnv2-eval: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  run()
