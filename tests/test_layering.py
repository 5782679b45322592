"""Import layering: results and plots never import the sweep layer; no subpackage circles.

Read from the source (every `import`/`from ... import` of every module, including imports
inside functions), so a lazy import cannot hide a circle.
"""

import ast
import collections
import os

import mnv2_jax

ROOT = os.path.dirname(mnv2_jax.__file__)


def _unit(module: str) -> str:
  """"mnv2_jax.results.tables" -> "results"; top-level modules are their own unit."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else parts[0]


def _edges():
  edges = collections.defaultdict(set)
  for dirpath, _, files in os.walk(ROOT):
    for name in files:
      if not name.endswith(".py"):
        continue
      path = os.path.join(dirpath, name)
      rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
      source = _unit(rel.removesuffix(".__init__"))
      for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        targets = []
        if isinstance(node, ast.Import):
          targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
          targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for target in targets:
          if target.startswith("mnv2_jax.") and _unit(target) != source:
            if os.path.exists(os.path.join(ROOT, _unit(target))) or os.path.exists(
                os.path.join(ROOT, _unit(target) + ".py")):
              edges[source].add(_unit(target))
  return edges


def test_results_and_plots_do_not_import_the_sweep_layer():
  edges = _edges()
  assert "sweeps" not in edges["results"], edges["results"]
  assert "sweeps" not in edges["plots"], edges["plots"]
  assert "report" not in edges["results"] and "report" not in edges["plots"]
  for unit in ("train", "sweeps", "results", "report", "logging"):
    assert "run_record" in edges[unit], unit  # the run directory contract


def test_no_two_parts_of_the_package_import_each_other_in_a_circle():
  edges = _edges()
  state: dict[str, int] = {}

  def visit(unit, stack):
    state[unit] = 1
    for nxt in sorted(edges.get(unit, ())):
      if state.get(nxt) == 1:
        raise AssertionError(f"import circle: {' -> '.join(stack + [unit, nxt])}")
      if nxt not in state:
        visit(nxt, stack + [unit])
    state[unit] = 2

  for unit in sorted(edges):
    if unit not in state:
      visit(unit, [])
