"""Test-wide setup: CPU only, quiet TensorFlow, a shared compile cache, a fresh TFDS data dir,
W&B isolated.

W&B isolation (every test module): every inherited ``WANDB_*`` variable is removed (so a
developer's key, project or sweep id cannot change what a test sees), ``NETRC`` points at a
file that does not exist and ``WANDB_BASE_URL`` at a closed local port, so code that tried to go
online fails fast instead of reaching the internet; wandb's data/cache/config/artifact dirs go
to a tmp dir. Module scope, so the changes end with each module. Subprocesses started by tests
inherit the same environment.

Note: test directories such as ``tests/logging`` have no ``__init__.py`` on purpose: with one,
``tests/`` on ``sys.path`` could let ``tests/logging`` shadow the standard library ``logging``.
"""

import atexit
import os
import shutil
import socket
import tempfile

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# One JAX compilation cache for the test session (and its subprocesses): the trainer tests
# compile the same tiny train step in several processes. $MNV2_JAX_CACHE_DIR wins (.ci/run
# points it at an empty temp dir); otherwise it persists in the repo's .pytest_cache.
os.environ.setdefault("MNV2_JAX_CACHE_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache",
    "mnv2_jax_compile_cache"))
# TFDS data: a fresh, empty data dir per test session, never the user's ~/tensorflow_datasets
# or $TFDS_DATA_DIR, so no test passes only because a dataset was prepared earlier (tests that
# use the default data_dir prepare sklearn_digits there themselves, concurrently-safe). Set by
# the main pytest process before TFDS is imported (TFDS reads it on import); xdist workers and
# subprocesses inherit it.
if "PYTEST_XDIST_WORKER" not in os.environ:
  os.environ["TFDS_DATA_DIR"] = tempfile.mkdtemp(prefix="mnv2_jax_tests_tfds_")
  atexit.register(shutil.rmtree, os.environ["TFDS_DATA_DIR"], ignore_errors=True)


# Session fixtures made once for all workers: the digits classifier, a prepared digit_scenes.
from shared_runs import digits_classifier  # noqa: F401  pylint: disable=unused-import
from shared_runs import scenes_data_dir  # noqa: F401  pylint: disable=unused-import


def _module_of(item) -> str:
  return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
  """Longest modules first: the sum of their tests' `slow(seconds=...)` marks, descending.

  README's test command distributes whole modules (`--dist loadscope --no-loadscope-reorder`:
  a module's fixtures are built once, on one worker) in this order, so the two workers start
  with the longest modules and end on short ones (longest-processing-time-first scheduling).
  In collection order the longest (trainer) modules came last, and one worker could still be
  training for minutes after the other ran out of tests. The sort is stable: every module stays
  contiguous and keeps its tests' order, and modules without slow tests keep theirs.
  """
  del config
  cost: dict[str, float] = {}
  for item in items:
    mark = item.get_closest_marker("slow")
    if mark is not None:
      seconds = mark.kwargs.get("seconds", 20.0)
      cost[_module_of(item)] = cost.get(_module_of(item), 0.0) + float(seconds)
  items.sort(key=lambda item: -cost.get(_module_of(item), 0.0))


def _closed_port() -> int:
  """A local TCP port with nothing listening (bound, then released)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def _isolated_wandb_env(tmp_path_factory):
  root = tmp_path_factory.mktemp("wandb_home")
  with pytest.MonkeyPatch.context() as mp:
    for key in list(os.environ):
      if key.startswith("WANDB_"):
        mp.delenv(key)
    mp.setenv("NETRC", str(root / "no_such_netrc"))
    mp.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    for name, sub in (("WANDB_DATA_DIR", "data"), ("WANDB_CACHE_DIR", "cache"),
                      ("WANDB_CONFIG_DIR", "config"), ("WANDB_ARTIFACT_DIR", "artifacts")):
      mp.setenv(name, str(root / sub))
    mp.setenv("WANDB_SILENT", "true")
    yield
