"""`mnv2-export`: a training checkpoint's inference function as a TF-Lite model, checked against JAX.

    mnv2-export --workdir=runs/digits                              # float32, batch 1
    mnv2-export --workdir=runs/digits --quantize=int8 --batch_size=8

Writes ``<out>`` (default ``WORKDIR/export/model_<quantize>_b<batch>.tflite``) and beside it a
``.json`` with what was exported and how it compares with JAX: the same ``--check_images``
images of the run's eval split through the TF-Lite model and through the run's own JAX model
(with the implementation it trained with, e.g. the native CPU kernels) (max |logit difference|, top-1 agreement, both
accuracies). int8 calibrates on ``--calibration_images`` images of the run's train split with
eval preprocessing. Both files are written to a temporary name and renamed, so a failed export
never leaves a half-written model. Conversion details: `mnv2_jax.export.tflite`. ONNX is not
offered: no maintained converter reads jax 0.10's StableHLO export (jax2onnx would be a
second, unpinned dependency).

Bad input (unknown ``--format``/``--quantize``, a workdir without config.json or without a
checkpoint, a batch size < 1) is rejected before anything is loaded or converted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

from mnv2_jax import data
from mnv2_jax import image_norm
from mnv2_jax import restore as restore_lib
from mnv2_jax.export import tflite


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="mnv2-export", description=__doc__.splitlines()[0])
  p.add_argument("--workdir", required=True, help="an mnv2-train run directory")
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--raw", action="store_true", help="export raw weights, not the EMA")
  p.add_argument("--format", choices=tflite.FORMATS, default="tflite")
  p.add_argument("--quantize", choices=tflite.QUANTIZE, default="none",
                 help="int8: full-integer post-training quantisation (float32 in/out)")
  p.add_argument("--batch_size", type=int, default=1, help="static batch of the exported model")
  p.add_argument("--out", default=None, help="output .tflite path")
  p.add_argument("--check_images", type=int, default=256,
                 help="eval-split images compared between JAX and TF-Lite (0: no check)")
  p.add_argument("--calibration_images", type=int, default=256,
                 help="train-split images for int8 calibration")
  return p.parse_args(argv)


def check_args(args) -> int:
  """Rejects bad flags before any work, naming the flag; returns the checkpoint step."""
  restore_lib.check_workdir(args.workdir)
  for flag, value, low in (("--batch_size", args.batch_size, 1),
                           ("--check_images", args.check_images, 0),
                           ("--calibration_images", args.calibration_images, 1)):
    if value < low:
      raise ValueError(f"{flag} must be an integer >= {low}, got {value}")
  if args.step is not None and args.step < 0:
    raise ValueError(f"--step must be an integer >= 0 (a saved checkpoint), got {args.step}")
  return restore_lib.checkpoint_step(args.workdir, args.step)


def split_images(config, split: str, count: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
  """The first `count` images of `split` (eval preprocessing), normalised, and their labels."""
  cfg = config.input.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.eval_split = split
  images, labels = [], []
  seen = 0
  for b in data.make_eval_batches(cfg, global_batch_size=max(batch, 8)):
    keep = np.asarray(b["mask"], bool)
    images.append(np.asarray(image_norm.normalize(b["image"][keep])))
    labels.append(np.asarray(b["label"][keep]))
    seen += int(keep.sum())
    if seen >= count:
      break
  return np.concatenate(images)[:count], np.concatenate(labels)[:count]


def compare(model, variables, blob: bytes, images: np.ndarray, labels: np.ndarray,
            batch: int) -> dict:
  """The run's own JAX model (its trained implementation, e.g. the native CPU kernels) vs the
  TF-Lite model on the same images: logit difference, top-1 agreement and both accuracies."""
  ref = tflite.batched(jax.jit(lambda x: model.apply(variables, x, train=False)), images, batch)
  got = tflite.run_batches(blob, images, batch)
  return {"images": int(len(images)),
          "max_abs_logit_diff": float(np.max(np.abs(got - ref))),
          "max_abs_logit": float(np.max(np.abs(ref))),
          "top1_agreement": float(np.mean(got.argmax(1) == ref.argmax(1))),
          "top1_jax": float(np.mean(ref.argmax(1) == labels)),
          "top1_tflite": float(np.mean(got.argmax(1) == labels))}


def _write_atomic(path: str, payload: bytes) -> None:
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(payload)
  os.replace(tmp, path)


def main(argv=None) -> dict:
  args = parse_args(argv)
  step = check_args(args)
  r = restore_lib.restore(args.workdir, step, raw=args.raw)
  res = int(r.config.input.resolution)
  shape = (args.batch_size, res, res, 3)
  fn = tflite.inference_fn(r.model, r.variables)
  representative = None
  if args.quantize == "int8":
    calib, _ = split_images(r.config, r.config.input.train_split, args.calibration_images,
                            args.batch_size)
    representative = [tflite.pad_batch(calib[i:i + args.batch_size], args.batch_size)
                      for i in range(0, len(calib), args.batch_size)]
  blob = tflite.convert(fn, shape, quantize=args.quantize, representative=representative)
  out = args.out or os.path.join(args.workdir, "export",
                                 f"model_{args.quantize}_b{args.batch_size}.tflite")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  report = {"workdir": args.workdir, "step": step, "format": args.format,
            "quantize": args.quantize, "input_shape": list(shape),
            "input": "float32 NHWC in [-1, 1] (x / 127.5 - 1)", "output": "float32 logits",
            "impl": str(tflite.EXPORT_IMPL), "path": out, **tflite.describe(blob)}
  if args.check_images:
    images, labels = split_images(r.config, r.config.input.eval_split, args.check_images,
                                  args.batch_size)
    report["check"] = {"split": r.config.input.eval_split,
                       **compare(r.model, r.variables, blob, images, labels, args.batch_size)}
  _write_atomic(out, blob)
  _write_atomic(os.path.splitext(out)[0] + ".json",
                (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
  print(json.dumps(report, sort_keys=True))
  return report


def run():
  try:
    main()
  except (ValueError, data.DatasetNotPreparedError) as e:
    print(f"mnv2-export: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  run()
