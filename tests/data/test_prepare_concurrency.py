"""Dataset preparation under concurrency: many preparers, one atomic publication.

The race this guards against (seen on a fresh machine): `mnv2-sweep --parallel=2` started
runs that all prepared `sklearn_digits` into the same empty data_dir at once, and all but one
died with tfds's `FileExistsError: Cannot rename .../incomplete.XXXX_1.0.0`.
"""

import os
import subprocess
import sys
import time

import pytest
import tensorflow_datasets as tfds

import mnv2_jax.data as data
from mnv2_jax.data import digits
from mnv2_jax.data import publish
from tfds_fixtures import input_config

NUM_PREPARERS = 4

# Imports everything, signals "ready", spins until the parent's "go" file appears (so all
# preparers call prepare() within ~1 ms of each other), prepares, then reads the sizes back.
_PREPARER = """
import os, sys, time
import mnv2_jax.data as data
data_dir, barrier, i = sys.argv[1:4]
cfg = {"dataset": "sklearn_digits", "data_dir": data_dir, "eval_split": "test"}
open(os.path.join(barrier, "ready." + i), "w").close()
go = os.path.join(barrier, "go")
while not os.path.exists(go):
  time.sleep(0.0005)
data.prepare(cfg)
info = data.dataset_info(cfg)
print("SIZES", info.num_train, info.num_eval)
"""


def _check_prepared(data_dir: str) -> None:
  """The dataset under data_dir is complete and every record is readable."""
  builder = tfds.builder("sklearn_digits", data_dir=data_dir)
  assert builder.is_prepared()
  assert builder.info.splits["train"].num_examples == digits.NUM_TRAIN
  assert builder.info.splits["test"].num_examples == digits.NUM_TEST
  for split, expected in digits.split_indices().items():
    source = builder.as_data_source(split=split)
    assert sorted(int(ex["index"]) for ex in source) == expected.tolist()
  # Nothing but the published version: no staging or tfds `incomplete.*` dir left behind.
  assert sorted(os.listdir(data_dir)) == ["sklearn_digits"]
  assert os.listdir(os.path.join(data_dir, "sklearn_digits")) == ["1.0.0"]


def test_concurrent_preparers_of_a_fresh_data_dir_all_succeed(tmp_path):
  data_dir, barrier = tmp_path / "tfds", tmp_path / "barrier"
  barrier.mkdir()
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(
      [os.getcwd(), *filter(None, [os.environ.get("PYTHONPATH")])])}
  procs = [subprocess.Popen([sys.executable, "-c", _PREPARER, str(data_dir), str(barrier),
                             str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
           for i in range(NUM_PREPARERS)]
  try:
    deadline = time.monotonic() + 180
    while len(list(barrier.glob("ready.*"))) < NUM_PREPARERS:
      assert time.monotonic() < deadline, "preparers did not start"
      assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
      time.sleep(0.01)
    (barrier / "go").touch()
    results = [p.communicate(timeout=180) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  failed = [(i, err.strip().splitlines()[-2:]) for i, (p, (_, err))
            in enumerate(zip(procs, results)) if p.returncode]
  assert not failed, failed
  for out, _ in results:
    assert f"SIZES {digits.NUM_TRAIN} {digits.NUM_TEST}" in out
  _check_prepared(str(data_dir))


def test_prepare_replaces_an_empty_version_dir(tmp_path):
  # An empty destination (e.g. left by a tool that crashed) is "not prepared"; tfds alone would
  # "reuse" it and leave the dataset unreadable.
  data_dir = tmp_path / "tfds"
  (data_dir / "sklearn_digits" / "1.0.0").mkdir(parents=True)
  data.prepare(input_config(data_dir=str(data_dir)))
  _check_prepared(str(data_dir))


def test_stale_staging_dirs_of_dead_local_preparers_are_removed(tmp_path):
  data_dir = tmp_path / "tfds"
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True)
  dead_pid = int(dead.stdout)
  host = publish._host()  # pylint: disable=protected-access
  stale = data_dir / f"{publish.STAGING_PREFIX}.{host}.{dead_pid}.crashed"
  other_host = data_dir / f"{publish.STAGING_PREFIX}.not-{host}.{dead_pid}.elsewhere"
  live = data_dir / f"{publish.STAGING_PREFIX}.{host}.{os.getpid()}.running"
  for d in (stale, other_host, live):
    (d / "sklearn_digits" / "incomplete.ABCDEF_1.0.0").mkdir(parents=True)
    (d / "sklearn_digits" / "incomplete.ABCDEF_1.0.0" / "partial.array_record").touch()
  data.prepare(input_config(data_dir=str(data_dir)))
  assert not stale.exists()
  assert other_host.exists() and live.exists()  # Their owners may still be working.
  builder = tfds.builder("sklearn_digits", data_dir=str(data_dir))
  assert builder.info.splits["train"].num_examples == digits.NUM_TRAIN


def _writer(payload: str):
  def build(staging):
    os.makedirs(os.path.join(staging, "ds", "1.0"))
    with open(os.path.join(staging, "ds", "1.0", "data"), "w") as f:
      f.write(payload)
  return build


def _complete(root):
  return lambda: os.path.exists(os.path.join(root, "ds", "1.0", "data"))


def test_loser_keeps_the_winners_result_and_cleans_up(tmp_path):
  root = str(tmp_path)
  winner = []

  def build_while_another_wins(staging):
    # Another preparer publishes while this one is still building.
    winner.append(publish.publish_dir(root, "ds/1.0", _writer("first"), _complete(root)))
    _writer("second")(staging)

  assert not publish.publish_dir(root, "ds/1.0", build_while_another_wins, _complete(root),
                                 wait_s=0)
  assert winner == [True]
  with open(os.path.join(root, "ds", "1.0", "data")) as f:
    assert f.read() == "first"
  assert sorted(os.listdir(root)) == ["ds"]


def test_incomplete_destination_is_reported_not_deleted(tmp_path):
  root = str(tmp_path)
  os.makedirs(os.path.join(root, "ds", "1.0"))
  open(os.path.join(root, "ds", "1.0", "junk"), "w").close()
  with pytest.raises(publish.PublishError, match=r"ds/1.0.*not a complete.*Delete it"):
    publish.publish_dir(root, "ds/1.0", _writer("x"), _complete(root), wait_s=0)
  assert os.listdir(os.path.join(root, "ds", "1.0")) == ["junk"]
  assert sorted(os.listdir(root)) == ["ds"]


def test_failed_build_leaves_nothing_behind(tmp_path):
  def build(staging):
    _writer("half")(staging)
    raise OSError("disk full")

  with pytest.raises(OSError, match="disk full"):
    publish.publish_dir(str(tmp_path), "ds/1.0", build, _complete(str(tmp_path)))
  assert os.listdir(tmp_path) == []


def test_unknown_dataset_is_refused_with_the_build_command(tmp_path):
  with pytest.raises(data.DatasetNotPreparedError, match="tfds build cifar10"):
    data.prepare(input_config(dataset="cifar10", data_dir=str(tmp_path)))
  assert os.listdir(tmp_path) == []  # Refused before any staging dir exists.
