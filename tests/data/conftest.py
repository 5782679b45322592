"""Session fixtures for the input-side tests: real small data, no download.

* `digits_dir`: a data_dir with the real `sklearn_digits` prepared once per
  session (ArrayRecord, ~1 s).
* `imagenet_dir`: the *real* `imagenet2012` builder prepared from a miniature
  manual-download directory (official tar layout, tiny random JPEGs; see
  tfds_fixtures.py), once per session.
"""

import os

import pytest
from tfds_fixtures import input_config
from tfds_fixtures import make_imagenet_manual_dir


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> str:
  """A data_dir holding the prepared real sklearn_digits."""
  import mnv2_jax.data as data  # pylint: disable=g-import-not-at-top
  data_dir = os.fspath(tmp_path_factory.mktemp("tfds_digits"))
  data.prepare(input_config(data_dir=data_dir))
  return data_dir


@pytest.fixture(scope="session")
def imagenet_dir(tmp_path_factory) -> tuple[str, dict]:
  """(data_dir, expected) with the real imagenet2012 builder prepared."""
  import mnv2_jax.data as data  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("imagenet")
  expected = make_imagenet_manual_dir(root / "manual")
  data_dir = os.fspath(root / "tfds")
  data.prepare(input_config(dataset="imagenet2012", data_dir=data_dir,
                            manual_dir=os.fspath(root / "manual")))
  return data_dir, expected
