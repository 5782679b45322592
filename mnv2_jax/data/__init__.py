"""Input side of mnv2_jax: TFDS datasets, tf.data pipelines, normalisation.

Public API (used by the trainer):
  DatasetInfo, dataset_info(cfg), make_train_iterator(cfg, ...),
  make_eval_iterator(cfg, ...), make_eval_batches(cfg, ...) (re-iterable: `EvalBatches`),
  prepare(cfg), normalize(images, dtype).

Importing this package registers the offline `sklearn_digits` and `fashion_mnist_local` TFDS
builders and
does not import TensorFlow (tf.data is imported lazily on first use).
"""

from mnv2_jax.data import digits  # Registers `sklearn_digits` with TFDS.
from mnv2_jax.data import fashion_mnist  # Registers `fashion_mnist_local`.
from mnv2_jax.data import digit_scenes  # Registers `digit_scenes` (detection/segmentation check).
from mnv2_jax.data import voc_segmentation  # Registers `voc2012_segmentation` (official, trainaug).
from mnv2_jax.data.datasets import DatasetNotPreparedError
from mnv2_jax.data.normalize import normalize
from mnv2_jax.data.pipeline import dataset_info
from mnv2_jax.data.pipeline import DatasetInfo
from mnv2_jax.data.pipeline import EvalBatches
from mnv2_jax.data.pipeline import make_eval_batches
from mnv2_jax.data.pipeline import make_eval_iterator
from mnv2_jax.data.pipeline import make_train_iterator
from mnv2_jax.data.pipeline import prepare
