"""Combinators: exact expansions, order, key normalisation and the errors they must raise."""

from __future__ import annotations

import pytest

from mnv2_jax.sweeps import combinators as C


def test_sweep_and_product_order_first_factor_slowest():
  runs = C.product(C.sweep("model.shortcut", ["bottleneck", "none"]), C.sweep("seed", [0, 1]))
  assert runs == [{"model.shortcut": "bottleneck", "seed": 0},
                  {"model.shortcut": "bottleneck", "seed": 1},
                  {"model.shortcut": "none", "seed": 0},
                  {"model.shortcut": "none", "seed": 1}]


def test_zipit_chain_fixed():
  z = C.zipit(C.sweep("model.width_multiplier", [1.4, 1.0]),
              C.sweep("input.resolution", [224, 96]))
  assert z == [{"model.width_multiplier": 1.4, "input.resolution": 224},
               {"model.width_multiplier": 1.0, "input.resolution": 96}]
  assert C.chain(C.sweep("seed", [0]), z) == [{"seed": 0}] + z
  assert C.fixed({"train.num_epochs": 12.0}, seed=3) == [{"train.num_epochs": 12.0, "seed": 3}]
  assert C.fixed(train__num_epochs=1) == [{"train.num_epochs": 1}]
  assert C.product(C.fixed({}), C.sweep("seed", [0, 1])) == [{"seed": 0}, {"seed": 1}]
  assert C.product() == [{}]


def test_config_prefix_is_stripped_and_lists_become_tuples():
  assert C.sweep("config.model.shortcut", ["none"]) == [{"model.shortcut": "none"}]
  assert C.fixed({"config.wandb.tags": ["a", "b"]}) == [{"wandb.tags": ("a", "b")}]
  assert C.canonical({"seed": 0, "config.a.b": 1}) == C.canonical({"a.b": 1, "seed": 0})


@pytest.mark.parametrize("make", [
    lambda: C.sweep("seed", []),                                       # no values
    lambda: C.sweep("model..shortcut", ["none"]),                      # bad path
    lambda: C.sweep("model.shortcut", [{"a": 1}]),                     # unsupported value
    lambda: C.product(C.sweep("seed", [0]), C.sweep("config.seed", [1])),  # same key twice
    lambda: C.zipit(C.sweep("seed", [0, 1]), C.sweep("input.resolution", [32])),  # lengths
    lambda: C.fixed({"seed": 0}, seed=1),                              # key given twice
])
def test_errors(make):
  with pytest.raises(ValueError):
    make()
