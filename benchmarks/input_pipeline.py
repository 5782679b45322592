"""Input-pipeline throughput: JPEG decode + Inception crop + flip at 224.

Two modes, both over generated ImageNet-like JPEGs (500x375, smooth random
content, quality 90):

  ops       The per-example training transform of mnv2_jax.data.preprocessing
            (fused decode_and_crop_jpeg, bilinear resize to 224, flip) as a
            tf.data map over encoded bytes held in memory, with the tf.data
            thread pool limited to --threads (1 and 2 by default). This is the
            decode cost per core, free of I/O.
  breakdown Where the per-image time goes: the training transform built up
            stage by stage (decode the whole JPEG; sample the crop window and
            decode only that; + resize to 224; + flip = the full transform),
            plus the resize on TF's uint8 kernel for comparison. Each stage is a
            synchronous single-threaded tf.data map (no prefetch, so no CPU
            time leaks between stages); the stages alternate for --repeats
            rounds and the median CPU ms per image of each is reported.
  pipeline  The real `make_train_iterator` end to end: the real imagenet2012
            TFDS builder is prepared (ArrayRecord) from a generated manual
            download, then records are read by index, parsed, decoded, cropped,
            flipped and batched. Its thread pool is not capped; pin cores with
            `taskset` to get per-core numbers.

Usage:
  python benchmarks/input_pipeline.py                  # ops, 1 and 2 threads
  python benchmarks/input_pipeline.py --mode=breakdown --repeats=5
  taskset -c 0 python benchmarks/input_pipeline.py --mode=pipeline --threads=1

Prints one JSON line and one Markdown table row per measurement.
"""

import argparse
import io
import json
import os
import pathlib
import platform
import tarfile
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_jpegs(count: int, seed: int = 0) -> list[bytes]:
  """`count` distinct 500x375 JPEGs with photo-like (smooth) content."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    coarse = rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((500, 375),
                                                      Image.BICUBIC))
    noise = rng.normal(0, 6, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    out.append(buf.getvalue())
  return out


def _time(iterator, batch: int, seconds: float,
          warmup: int) -> tuple[float, float]:
  """Returns (images per wall second, images per process CPU second).

  The second number counts CPU time of all threads of this process, so it is
  the per-core cost even when other jobs share the cores (wall-clock rates
  then understate what a dedicated core does).
  """
  for _ in range(warmup):
    next(iterator)
  count, start, cpu_start = 0, time.perf_counter(), time.process_time()
  while time.perf_counter() - start < seconds:
    next(iterator)
    count += batch
  wall = time.perf_counter() - start
  return count / wall, count / (time.process_time() - cpu_start)


def _train_transform(encoded, index):
  """The shipped training transform at 224, seeded by the example's index."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mnv2_jax.data import preprocessing  # pylint: disable=g-import-not-at-top
  seed = tf.stack([tf.constant(0, tf.int64), index])
  return preprocessing.preprocess_for_train(
      encoded, seed, augment="inception_crop_flip", resolution=224)


def bench_ops(jpegs, threads: int, batch: int,
              seconds: float) -> tuple[float, float]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")

  ds = tf.data.Dataset.from_tensor_slices(jpegs).repeat()
  ds = tf.data.Dataset.zip(ds, tf.data.Dataset.range(2**62))
  ds = ds.map(_train_transform, num_parallel_calls=threads)
  ds = ds.batch(batch).prefetch(2)
  options = tf.data.Options()
  options.threading.private_threadpool_size = threads
  options.threading.max_intra_op_parallelism = 1
  ds = ds.with_options(options)
  return _time(iter(ds.as_numpy_iterator()), batch, seconds, warmup=3)


def _breakdown_stages():
  """Stage name -> (encoded, index) -> tensor, each adding one step.

  The stages call the same preprocessing functions, with the same crop seed, as
  `preprocess_for_train` (the last stage), so each differs from the one above
  by exactly one step.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mnv2_jax.data import preprocessing  # pylint: disable=g-import-not-at-top

  def crop_decode(encoded, index):
    seed = tf.stack([tf.constant(0, tf.int64), index])
    crop_seed = tf.random.experimental.stateless_split(seed, num=2)[0]
    return preprocessing.decode_and_crop(
        encoded, lambda shape: preprocessing.random_crop_window(shape, crop_seed))

  def resize_uint8_kernel(image):
    resized = tf.image.resize(image, [224, 224])  # uint8 in: TF's uint8 kernel
    return tf.cast(resized + 0.5, tf.uint8)

  # Variable-size outputs are cut to one pixel so they can be batched; the
  # decode still runs in full (its output is consumed).
  return {
      "decode whole JPEG": lambda e, i: tf.io.decode_jpeg(e, 3)[:1, :1],
      "+ crop window, fused crop-decode": (
          lambda e, i: crop_decode(e, i)[:1, :1]),
      "+ resize 224 (shipped, float kernel)": (
          lambda e, i: preprocessing.resize(crop_decode(e, i), 224)),
      "+ resize 224 on TF's uint8 kernel": (
          lambda e, i: resize_uint8_kernel(crop_decode(e, i))),
      "+ flip = full train transform": _train_transform,
  }


def bench_breakdown(jpegs, batch: int, seconds: float,
                    repeats: int) -> dict[str, float]:
  """Median CPU ms per image of each stage, the stages alternating."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  options = tf.data.Options()
  options.autotune.enabled = False
  options.experimental_optimization.inject_prefetch = False
  options.experimental_optimization.map_parallelization = False
  options.threading.private_threadpool_size = 1
  options.threading.max_intra_op_parallelism = 1
  iterators = {}
  for name, fn in _breakdown_stages().items():
    ds = tf.data.Dataset.from_tensor_slices(jpegs).repeat()
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.range(2**62))
    ds = ds.map(fn).batch(batch).with_options(options)
    iterators[name] = iter(ds.as_numpy_iterator())
    for _ in range(2):
      next(iterators[name])
  times = {name: [] for name in iterators}
  for _ in range(repeats):
    for name, iterator in iterators.items():
      _, per_cpu_s = _time(iterator, batch, seconds, warmup=0)
      times[name].append(1e3 / per_cpu_s)
  return {name: float(np.median(t)) for name, t in times.items()}


def print_breakdown(medians: dict[str, float], args) -> None:
  print(json.dumps({"benchmark": "input_pipeline", "mode": "breakdown",
                    "ms_per_image_cpu": {k: round(v, 3)
                                         for k, v in medians.items()},
                    "repeats": args.repeats, "seconds": args.seconds,
                    "cpu_count": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)}), flush=True)
  print("| stage | CPU ms / image | img per CPU-s |")
  print("|---|---|---|")
  for name, ms in medians.items():
    print(f"| {name} | {ms:.3f} | {1e3 / ms:.0f} |")


def bench_pipeline(jpegs, threads: int, batch: int,
                   seconds: float) -> tuple[float, float]:
  import ml_collections  # pylint: disable=g-import-not-at-top
  import mnv2_jax.data as data  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    manual = pathlib.Path(tmp) / "manual"
    manual.mkdir()
    # Official layout: outer train tar of per-synset tars.
    with tarfile.open(manual / "ILSVRC2012_img_train.tar", "w") as outer:
      inner_buf = io.BytesIO()
      with tarfile.open(fileobj=inner_buf, mode="w") as inner:
        for i, payload in enumerate(jpegs):
          info = tarfile.TarInfo(f"n01440764_{i}.JPEG")
          info.size = len(payload)
          inner.addfile(info, io.BytesIO(payload))
      info = tarfile.TarInfo("n01440764.tar")
      info.size = len(inner_buf.getvalue())
      outer.addfile(info, io.BytesIO(inner_buf.getvalue()))
    # The TFDS builder needs the val tar even to build only `train`.
    with tarfile.open(manual / "ILSVRC2012_img_val.tar", "w") as val:
      for i, payload in enumerate(jpegs[:4]):
        info = tarfile.TarInfo(f"ILSVRC2012_val_{i + 1:08d}.JPEG")
        info.size = len(payload)
        val.addfile(info, io.BytesIO(payload))
    cfg = ml_collections.ConfigDict(dict(
        dataset="imagenet2012", data_dir=os.path.join(tmp, "tfds"),
        manual_dir=os.fspath(manual), train_split="train",
        eval_split="validation", resolution=224,
        augment="inception_crop_flip", crop_area_min=0.05, eval_crop=0.875,
        cache=False, num_parallel_calls=threads, prefetch=2,
        synthetic_num_classes=1000, synthetic_num_examples=1))
    data.prepare(cfg)
    iterator = data.make_train_iterator(cfg, global_batch_size=batch, seed=0)
    return _time(iterator, batch, seconds, warmup=3)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--mode", choices=("ops", "breakdown", "pipeline"),
                      default="ops")
  parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--seconds", type=float, default=15.0)
  parser.add_argument("--num_images", type=int, default=256)
  parser.add_argument("--repeats", type=int, default=5,
                      help="breakdown mode: rounds over the stages")
  args = parser.parse_args()
  jpegs = make_jpegs(args.num_images)
  if args.mode == "breakdown":
    print_breakdown(bench_breakdown(jpegs, args.batch, args.seconds,
                                    args.repeats), args)
    return
  fn = bench_ops if args.mode == "ops" else bench_pipeline
  print("| mode | threads | img/s (wall) | img/s per thread (wall) | "
        "img per CPU-s | cores | load avg |")
  print("|---|---|---|---|---|---|---|")
  for threads in args.threads:
    rate, per_cpu_s = fn(jpegs, threads, args.batch, args.seconds)
    row = {
        "benchmark": "input_pipeline", "mode": args.mode, "threads": threads,
        "resolution": 224, "source_hw": [375, 500],
        "mean_jpeg_bytes": int(np.mean([len(j) for j in jpegs])),
        "images_per_s": round(rate, 1),
        "images_per_s_per_thread": round(rate / threads, 1),
        "images_per_cpu_s": round(per_cpu_s, 1),
        "cpu_count": os.cpu_count(), "cpu": platform.processor() or "?",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(row), flush=True)
    print(f"| {args.mode} | {threads} | {rate:.0f} | {rate / threads:.0f} | "
          f"{per_cpu_s:.0f} | {os.cpu_count()} | {row['load_avg_1m']} |",
          flush=True)


if __name__ == "__main__":
  main()
