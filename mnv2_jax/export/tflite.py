"""A model's inference function as a TF-Lite flatbuffer (jax2tf -> TFLiteConverter), and running it.

Path: `jax2tf.convert` serialises the jitted forward as StableHLO inside one `XlaCallModule`
op (jax 0.10's native serialisation; the graph-mode lowering is gone), and TF's
`TFLiteConverter.from_concrete_functions` legalises that StableHLO to TF-Lite builtins. Checked
on the pinned stack (TF 2.21): it accepts it, provided the model is written in ops the
legaliser maps:

- the implementation is forced to `EXPORT_IMPL`: the native CPU kernels are custom calls no
  converter knows, and a rank-4 `dot_general` (the `"dot"`/`"cpu_vjp"` 1x1 convs) is rejected
  ("'tfl.batch_matmul' op found invalid output rank"), so 1x1 convs are written as convolutions
  (`pointwise="conv"` -> CONV_2D), depthwise as a grouped convolution (-> DEPTHWISE_CONV_2D),
  batch norm as its folded multiply-add (constant-folded into the conv by the converter);
- variables are closed over (constants), batch size and resolution are static.

Input: float32 NHWC in [-1, 1] (`mnv2_jax.image_norm.normalize` of the uint8 image, as
TF-Lite's hosted MobileNet models take); output: float32 logits. ``quantize="int8"`` is full
integer post-training quantisation of weights and activations from a representative dataset
(the converter's own calibration), keeping float32 input and output so that logits compare.

The interpreter is LiteRT's (`ai_edge_litert`, pinned): TF 2.21's `tf.lite.Interpreter` is
deprecated in its favour. XNNPACK is its default CPU delegate for float models.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mnv2_jax.ops.impl import Impl

FORMATS = ("tflite",)
QUANTIZE = ("none", "int8")
EXPORT_IMPL = Impl(depthwise="xla", batchnorm="xla", pointwise="conv", partition="gathered")


def for_export(model):
  """`model` with the implementation TF-Lite's converter can read (same variables)."""
  return model.clone(impl=EXPORT_IMPL)


def inference_fn(model, variables) -> Callable:
  """float32 [B, R, R, 3] in [-1, 1] -> logits, eval mode (running batch-norm statistics)."""
  model = for_export(model)
  return lambda images: model.apply(variables, images, train=False)


def convert(fn: Callable, input_shape: tuple[int, ...], *, quantize: str = "none",
            representative: Iterable[np.ndarray] | None = None) -> bytes:
  """The TF-Lite flatbuffer of `fn` at a static `input_shape` (float32 NHWC)."""
  if quantize not in QUANTIZE:
    raise ValueError(f"quantize must be one of {QUANTIZE}, got {quantize!r}")
  if quantize == "int8" and representative is None:
    raise ValueError("quantize='int8' needs a representative dataset (float32 batches)")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top

  tf_fn = tf.function(jax2tf.convert(fn, with_gradient=False), autograph=False,
                      input_signature=[tf.TensorSpec(input_shape, tf.float32)])
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [tf_fn.get_concrete_function()], tf_fn)
  if quantize == "int8":
    batches = list(representative)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.asarray(b, np.float32)] for b in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter.convert()


def interpreter(blob: bytes, num_threads: int = 1):
  """A LiteRT interpreter of `blob`, tensors allocated (XNNPACK for float ops)."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  interp = litert.Interpreter(model_content=blob, num_threads=num_threads)
  interp.allocate_tensors()
  return interp


def run(interp, images: np.ndarray) -> np.ndarray:
  """Logits of `images` (exactly the interpreter's input shape) through `interp`."""
  inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
  interp.set_tensor(inp["index"], np.asarray(images, np.float32))
  interp.invoke()
  return np.array(interp.get_tensor(out["index"]))


def pad_batch(x: np.ndarray, batch: int) -> np.ndarray:
  """`x` (at most `batch` images) zero-padded to exactly `batch`, float32: a static-shape input."""
  out = np.zeros((batch,) + x.shape[1:], np.float32)
  out[:len(x)] = x
  return out


def batched(fn: Callable, images: np.ndarray, batch: int) -> np.ndarray:
  """`fn` over all `images` in static batches of `batch` (the tail padded, then dropped)."""
  return np.concatenate([np.asarray(fn(pad_batch(images[i:i + batch], batch)))[
      :len(images[i:i + batch])] for i in range(0, len(images), batch)])


def run_batches(blob: bytes, images: np.ndarray, batch: int) -> np.ndarray:
  """Logits of all `images` through `blob` (its static batch is `batch`)."""
  interp = interpreter(blob)
  return batched(lambda x: run(interp, x), images, batch)


def ops(blob: bytes) -> dict[str, int]:
  """Builtin op name -> count in `blob` (what the converter produced)."""
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  interp = litert.Interpreter(model_content=blob)
  counts: dict[str, int] = {}
  # LiteRT's only op listing is this underscored method (tf.lite's analyzer prints text).
  for op in interp._get_ops_details():  # pylint: disable=protected-access
    counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
  return counts


def time_invoke(interp, images: np.ndarray) -> float:
  """Seconds for one `invoke()` of `interp` on `images` (input set beforehand, not timed)."""
  inp = interp.get_input_details()[0]
  interp.set_tensor(inp["index"], np.asarray(images, np.float32))
  t0 = time.perf_counter()
  interp.invoke()
  return time.perf_counter() - t0


def describe(blob: bytes) -> dict[str, Any]:
  return {"bytes": len(blob), "ops": ops(blob)}
