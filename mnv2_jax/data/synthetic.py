"""`dataset="synthetic"`: fixed random uint8 images for benchmarks (no TF).

The examples are generated once per iterator from a fixed seed (0), so train
and eval see the same data and every process agrees on it. The stream obeys
the same contracts as the real pipeline: per-process shards, batch k is a pure
function of k (exact resume), padded + masked eval batches.
"""

from collections.abc import Iterator

import numpy as np

from mnv2_jax.data import options as options_lib

_DATA_SEED = 0


def _examples(opts: options_lib.InputOptions, process_index: int,
              process_count: int):
  """This process's contiguous near-equal shard of the synthetic dataset."""
  n, r = opts.synthetic_num_examples, opts.resolution
  bounds = np.linspace(0, n, process_count + 1).round().astype(int)
  lo, hi = bounds[process_index], bounds[process_index + 1]
  rng = np.random.default_rng(_DATA_SEED)
  labels = rng.integers(0, opts.synthetic_num_classes, n).astype(np.int32)
  images = rng.integers(0, 256, (n, r, r, 3), dtype=np.uint8)
  max_shard = int(np.max(np.diff(bounds)))
  return images[lo:hi], labels[lo:hi], max_shard


def train_iterator(opts, *, local_batch: int, seed: int, start_step: int,
                   process_index: int, process_count: int) -> Iterator[dict]:
  """Infinite; batch k holds shard examples (k*B + i) mod n, i < B."""
  del seed  # The synthetic stream is fixed; nothing is random per run.
  images, labels, _ = _examples(opts, process_index, process_count)
  n = len(labels)
  if n == 0:
    raise ValueError(f"Process {process_index} of {process_count} has no "
                     "synthetic examples; raise synthetic_num_examples.")
  step = start_step
  while True:
    idx = (step * local_batch + np.arange(local_batch)) % n
    yield {"image": images[idx], "label": labels[idx]}
    step += 1


def eval_iterator(opts, *, local_batch: int, process_index: int,
                  process_count: int) -> Iterator[dict]:
  """Finite; each shard example once, zero-padded to equal batch counts."""
  images, labels, max_shard = _examples(opts, process_index, process_count)
  n = len(labels)
  num_batches = -(-max_shard // local_batch)
  for b in range(num_batches):
    pos = b * local_batch + np.arange(local_batch)
    mask = pos < n
    idx = np.where(mask, pos, 0)
    image = images[idx] if n else np.zeros(
        (local_batch,) + images.shape[1:], np.uint8)
    label = labels[idx] if n else np.zeros(local_batch, np.int32)
    yield {"image": np.where(mask[:, None, None, None], image, 0).astype(
               np.uint8),
           "label": np.where(mask, label, 0).astype(np.int32),
           "mask": mask}
