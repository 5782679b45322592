"""Measured TF-Lite latency of MobileNetV2 configurations (the paper's Table 4 axis), fairly.

What is timed: one `invoke()` of the LiteRT interpreter (XNNPACK delegate, float32, batch 1)
on a fixed input, after `warmup` untimed invocations, `repeats` times per (model, threads).
Latency does not depend on the weights' values, so each model is exported with random
stand-in values of exactly its variables (`stand_in_variables`); the architecture, MAdds and
parameters are those of the target.

Fairness on a shared machine: the measurement is **interleaved**: each round invokes every
(model, threads) interpreter once, and odd rounds walk them in reverse order, so a burst of
load from another process hits all of them alike instead of one model's whole block. The
statistic is the median over rounds, with the quartiles beside it.

Targets (`targets`): the 22 released width x resolution checkpoints at the baseline block
(`mnv2_jax.plots.paper_points`), and at 1.0/224 every one-axis-off variant of the
compute-neutral ablation axes (`mnv2_jax.ablations`: ReLU6 bottleneck, shortcut between
expansions, no shortcut), so the Fig. 6 variants' equal MAdds can be set against their time.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mnv2_jax import ablations
from mnv2_jax import complexity
from mnv2_jax.export import tflite
from mnv2_jax.models import MobileNetV2
from mnv2_jax.plots import paper_points

MODEL = "mobilenet_v2"


@dataclasses.dataclass(frozen=True)
class Target:
  width: float
  resolution: int
  fields: tuple[tuple[str, Any], ...] = ()     # off-baseline ablation fields, e.g. shortcut

  @property
  def variant(self) -> str:
    return ablations.variant(MODEL, ablations.values_of(MODEL, dict(self.fields)), "v2")

  @property
  def name(self) -> str:
    return f"{self.width:g}/{self.resolution} {self.variant}"

  def model(self, impl=tflite.EXPORT_IMPL) -> MobileNetV2:
    return MobileNetV2(width_multiplier=self.width, num_classes=1000, impl=impl,
                       **dict(self.fields))


def parse_point(text: str) -> tuple[float, int]:
  """"1.0/224" -> (1.0, 224), or ValueError naming the format."""
  try:
    w, r = text.split("/")
    return float(w), int(r)
  except ValueError:
    raise ValueError(f"a point is WIDTH/RESOLUTION (e.g. 1.0/224), got {text!r}") from None


def parse_threads(text: str) -> tuple[int, ...]:
  """"1,2" -> (1, 2), or ValueError naming `--threads` (the flag of mnv2-latency/-measure)."""
  try:
    threads = tuple(int(t) for t in text.split(","))
  except ValueError:
    raise ValueError(f"--threads must be integers >= 1, e.g. 1,2; got {text!r}") from None
  if not threads or min(threads) < 1:
    raise ValueError(f"--threads must be integers >= 1, got {text!r}")
  return threads


def one_axis_variants() -> list[tuple[tuple[str, Any], ...]]:
  """Every compute-neutral axis value off the baseline, the other axes at baseline."""
  out = []
  for axis in ablations.compute_neutral(MODEL):
    for value in axis.values or ():
      if not axis.is_baseline(value):
        out.append(((axis.field, value),))
  return out


def targets(points: Sequence[tuple[float, int]] | None = None,
            variants_at: Sequence[tuple[float, int]] = ((1.0, 224),)) -> list[Target]:
  """Baseline at each point (default: the 22 released), then the variants at `variants_at`."""
  if points is None:
    points = [(p.width, p.resolution) for p in paper_points.RELEASED_CHECKPOINTS]
  out = [Target(w, r) for w, r in points]
  out += [Target(w, r, f) for w, r in variants_at for f in one_axis_variants()]
  return out


def stand_in_variables(model, shape: tuple[int, ...], seed: int = 0) -> dict:
  """Variables with the model's exact structure and random values (latency ignores values).

  `model.init` itself would cost seconds per model on CPU (it traces the whole network);
  `jax.eval_shape` gives the structure for free. Running variances are 1 (a valid batch norm).
  """
  abstract = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(seed),
                                               jnp.zeros(shape, jnp.float32), train=False))
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    if jax.tree_util.keystr(path).endswith("['var']"):
      return np.ones(leaf.shape, leaf.dtype)
    return (0.05 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def export(target: Target) -> bytes:
  """`target` as a float32 batch-1 TF-Lite model (stand-in weights: `stand_in_variables`)."""
  model = target.model()
  shape = (1, target.resolution, target.resolution, 3)
  return tflite.convert(tflite.inference_fn(model, stand_in_variables(model, shape)), shape)


def schedule(keys: Sequence[Any], rounds: int) -> list[Any]:
  """The interleaved order: every key once per round, odd rounds reversed."""
  order = []
  for r in range(rounds):
    order.extend(keys if r % 2 == 0 else list(reversed(keys)))
  return order


def measure(blobs: dict[str, bytes], resolutions: dict[str, int], threads: Sequence[int],
            warmup: int, repeats: int) -> dict[tuple[str, int], list[float]]:
  """Seconds per invoke, per (name, threads), interleaved (see the module docstring)."""
  interps, inputs = {}, {}
  rng = np.random.default_rng(0)
  for name, blob in blobs.items():
    r = resolutions[name]
    inputs[name] = rng.uniform(-1, 1, (1, r, r, 3)).astype(np.float32)
    for t in threads:
      interps[(name, t)] = tflite.interpreter(blob, num_threads=t)
  keys = list(interps)
  for key in schedule(keys, warmup):
    tflite.time_invoke(interps[key], inputs[key[0]])
  times: dict[tuple[str, int], list[float]] = {k: [] for k in keys}
  for key in schedule(keys, repeats):
    times[key].append(tflite.time_invoke(interps[key], inputs[key[0]]))
  return times


def summarize(seconds: Sequence[float]) -> dict[str, float]:
  ms = sorted(1e3 * s for s in seconds)
  q = statistics.quantiles(ms, n=4) if len(ms) >= 2 else [ms[0]] * 3
  return {"median_ms": statistics.median(ms), "q1_ms": q[0], "q3_ms": q[2], "n": len(ms)}


def rows(targets_: Sequence[Target], times: dict[tuple[str, int], list[float]],
         sizes: dict[str, int]) -> list[dict[str, Any]]:
  """One row per (target, threads): the configuration, its exact MAdds/params, the timing."""
  out = []
  for t in targets_:
    c = complexity.analyze(t.model(), t.resolution)
    for (name, threads), secs in times.items():
      if name == t.name:
        out.append({"name": t.name, "width": t.width, "resolution": t.resolution,
                    "variant": t.variant, **dict(t.fields), "madds": c.madds,
                    "params": c.params, "tflite_bytes": sizes[name], "threads": threads,
                    **summarize(secs)})
  return out
