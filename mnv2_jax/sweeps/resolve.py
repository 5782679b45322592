"""Turning (base config, overrides) into a resolved, validated config, exactly as the CLI would.

Why the CLI path: the trainer reads ``--config=<file>[:arg] --config.a.b=v`` through
``ml_collections.config_flags``; parsing our overrides through the same code (a fresh
``flags.FlagValues`` and ``sys_argv=``, see shared/reference/ecosystem.md §3.3) catches unknown
keys (the config is locked), values of the wrong type and unparsable strings before any run
starts. ``build_model`` then checks every field value with the trainer's own checks
(``mnv2_jax.validate``: finite positive learning rates, known names, ...) and constructs the Flax
module, whose ``__post_init__`` raises ValueError on bad fields (e.g. ``shortcut="expanshun"``).
Durations need the dataset's size and are checked by the trainer before it writes anything.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections


class InvalidRunError(ValueError):
  """A run's overrides do not give a valid config or model."""


def format_value(value: Any) -> str:
  """A value as ``config_flags`` parses it back: tuples as Python literals, the rest str()."""
  if isinstance(value, (tuple, list)):
    inner = ", ".join(json.dumps(v) if isinstance(v, str) else repr(v) for v in value)
    return f"({inner},)" if len(value) == 1 else f"({inner})"
  if isinstance(value, float):
    return repr(value)
  if value is None:
    raise ValueError("None cannot be passed as a --config override")
  return str(value)


def override_flags(overrides: Mapping[str, Any]) -> list[str]:
  """``{"model.shortcut": "none"}`` -> ``["--config.model.shortcut=none"]`` (insertion order)."""
  return [f"--config.{k}={format_value(v)}" for k, v in overrides.items()]


def config_path(base_config: str) -> str:
  """``"configs/small.py:dataset=cifar10"`` -> ``"configs/small.py"``."""
  return base_config.split(":", 1)[0]


def _ensure_importable(base_config: str) -> None:
  """Config files do ``from configs import common``: put the dir holding ``configs/`` first."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(config_path(base_config))))
  if root not in sys.path:
    sys.path.insert(0, root)


def load_config(base_config: str, flags_argv: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Parses ``--config=<base_config> <flags_argv...>`` with ``config_flags`` (fresh flags)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  if not os.path.isfile(config_path(base_config)):
    raise InvalidRunError(f"config file {config_path(base_config)!r} does not exist "
                          f"(paths are relative to {os.getcwd()})")
  _ensure_importable(base_config)
  argv = ["mnv2-sweep", f"--config={base_config}", *flags_argv]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, flag_values=values, lock_config=True,
                                  sys_argv=argv)
  try:
    with warnings.catch_warnings():  # config_flags imports the file with load_module().
      warnings.simplefilter("ignore", DeprecationWarning)
      values(argv)
      return values.config
  except Exception as e:  # absl/ml_collections raise many types; report them uniformly.
    raise InvalidRunError(f"{' '.join(argv[1:])}: {type(e).__name__}: {e}") from e


# The class count is the dataset's, not a config field, and the sweep has no dataset: the model
# is constructed with two classes to run its field checks (any count >= 2 leaves them the same;
# a segmenter needs >= 2: background and one class). The trainer constructs it again with the
# dataset's count, after reading the dataset.
_FIELD_CHECK_CLASSES = 2


def build_model(config: ml_collections.ConfigDict):
  """Checks every field value of a run as the trainer does; returns the model.

  Uses the trainer's own checks, ``mnv2_jax.validate.check_fields`` (``wandb``, ``train``,
  ``input``, every ``optim`` value) and ``validate.check_model`` (the Flax module constructed,
  its spec expanded at the run's resolution); raises InvalidRunError. No stand-in durations:
  the duration-dependent limits (warm-up longer than the run, decay period under one step) and
  the dataset (prepared? its class count and size) are checked by the trainer at start-up,
  before it writes anything.
  """
  from mnv2_jax import validate  # pylint: disable=g-import-not-at-top

  try:
    validate.check_fields(config)
    return validate.check_model(config, _FIELD_CHECK_CLASSES)
  except (ValueError, TypeError, KeyError, AttributeError) as e:
    raise InvalidRunError(f"{type(e).__name__}: {e}") from e


def resolve(base_config: str, overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """The resolved config of one run; raises InvalidRunError if it or its model is invalid."""
  config = load_config(base_config, override_flags(overrides))
  build_model(config)
  return config


def get_path(config: Any, key: str) -> Any:
  """``get_path(config, "model.shortcut")`` for a ConfigDict or nested dict."""
  node = config
  for part in key.split("."):
    node = node[part]
  return node
