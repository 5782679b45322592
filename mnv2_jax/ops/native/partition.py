"""Data-parallel SPMD partitioning of the native custom calls.

XLA's SPMD partitioner knows nothing about an FFI custom call. Left alone, it gathers the
call's operands onto every device and runs the kernel on the whole global batch everywhere:
the results are right, but an N-device mesh does N times the work and gains no speed.
Every native kernel here is batch-parallel. Each result either has the batch as its leading
dimension (the depthwise forward and input gradient) or is a sum over the batch (the depthwise
weight gradient, the batch-norm sums). `batch_parallel` says so through
`jax.experimental.custom_partitioning`:

* batched operands keep the mesh axes their leading dimension is sharded over; all their other
  dimensions, and every other operand, are replicated (a kernel needs whole images and all
  channels);
* each device runs the kernel on its own shard;
* "batch" results come out sharded like the batch, and "sum" results are `psum`-ed over the
  batch's mesh axes.

So batch-norm statistics stay global-batch statistics, as in the XLA path and as documented
in `mnv2_jax.parallel`. A batch that does not divide evenly over those axes is gathered and
computed whole on every device, like an unpartitioned call.

On a single device, and inside `shard_map`, custom_partitioning inlines the kernel with no
overhead. custom_partitioning has no vmap rule, so the wrapped function batches with
`jax.custom_batching.sequential_vmap`, a loop over the vmapped axis. That is what the calls'
`vmap_method="sequential"` did before.

Persistent compilation cache: JAX keys a cached executable on the HLO before partitioning, in
which a partitioned call is an opaque `CustomSPMDPartitioning` op whose only payload is a
pointer to this process's callback. So by default every multi-device program with such an op
misses the cache. `mnv2_jax.compile_cache` therefore sets
`jax_remove_custom_partitioning_ptr_from_cache_key`, which drops the pointer from the key.
That is only safe if the op's HLO determines what the callback does. Each call therefore gets
one extra operand, a small int32 constant (`_key_operand`) holding the static arguments (stride,
pads, ...) and a fingerprint of the source files that define the call's lowering: this file and
the file that defines the wrapped function (found from the function itself when it is wrapped,
so every caller of `batch_parallel` is covered by construction, with no list to maintain).
Two calls with the same shapes but, say, different strides, or one compiled before and one after
an edit of those files, never share a cache entry. The kernels never read that operand.

Whether the calls are partitioned at all is the caller's explicit choice
(`mnv2_jax.ops.impl.Impl.partition`: "sharded" or "gathered"), passed as `partition=`.
"""

from __future__ import annotations

import inspect
import math
import pathlib
import zlib
from typing import Callable, Sequence

import jax
import numpy as np
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

KINDS = ("batch", "sum")
PARTITIONS = ("sharded", "gathered", "auto")
"""`partition=` values: data-parallel calls, or calls left to XLA (gathered); auto = sharded."""


def fingerprint(impl: Callable) -> int:
  """CRC of this file and of the source file defining `impl`: what decides the lowering."""
  files = {pathlib.Path(__file__).resolve(), pathlib.Path(inspect.getsourcefile(impl)).resolve()}
  return zlib.crc32(b"".join(f.read_bytes() for f in sorted(files)))


def _batch_axes(mesh, arg_shapes, batched: Sequence[bool]):
  """Mesh axes the first batched operand's leading dim is split over (None: keep it whole)."""
  first = next(a for a, b in zip(arg_shapes, batched) if b)
  spec = getattr(first.sharding, "spec", ())
  axes = spec[0] if len(spec) else None
  if axes is None:
    return None
  names = axes if isinstance(axes, tuple) else (axes,)
  shards = math.prod(mesh.shape[name] for name in names)
  return axes if first.shape[0] % shards == 0 else None


def _key_operand(source_crc: int, static) -> np.ndarray:
  """int32 [source fingerprint, *static ints]: makes the pre-partitioning HLO identify the call."""
  leaves = [int(v) for v in jax.tree.leaves(static)]
  return np.asarray([source_crc - 2**31, *leaves], np.int32)


def batch_parallel(impl: Callable, *, num_static: int, batched: Sequence[bool],
                   results: Sequence[str], rule: str) -> Callable:
  """Wraps `impl(*static, *operands)` (one custom call) for data-parallel partitioning.

  Args:
    impl: computes the results from per-shard operands; result shapes must be derived from
      the operands' shapes (it sees shard shapes when partitioned), not from closed-over sizes.
    num_static: how many leading arguments are static (hashable Python values).
    batched: per array operand, whether its leading dimension is the batch.
    results: per result, "batch" (leading dimension is the batch) or "sum" (summed over it).
    rule: Shardy sharding rule, einsum-like, with the batch factor named `b`.

  Returns:
    `f(*static, *operands, partition="sharded")` returning what `impl` returns (a tuple if
    `results` has more than one entry); `partition="gathered"` emits the plain call.
  """
  if any(kind not in KINDS for kind in results):
    raise ValueError(f"results must be drawn from {KINDS}, got {results}")
  source_crc = fingerprint(impl)
  single = len(results) == 1
  summed_only = all(kind == "sum" for kind in results)

  def partition(*args):
    static, (mesh, arg_shapes, _) = args[:num_static], args[num_static:]
    arg_shapes = arg_shapes[1:]  # The key operand comes first.
    axes = _batch_axes(mesh, arg_shapes, batched)
    arg_shardings = tuple(NamedSharding(mesh, P(axes) if b else P()) for b in batched)
    result_shardings = tuple(NamedSharding(mesh, P(axes) if kind == "batch" else P())
                             for kind in results)

    def lower(key, *operands):
      del key
      outs = impl(*static, *operands)
      outs = (outs,) if single else tuple(outs)
      if axes is not None:
        outs = tuple(jax.lax.psum(o, axes) if kind == "sum" else o
                     for o, kind in zip(outs, results))
      return outs[0] if single else outs

    return (mesh, lower, result_shardings[0] if single else result_shardings,
            (NamedSharding(mesh, P()),) + arg_shardings)

  def keyed(*args):
    static, operands = args[:num_static], args[num_static + 1:]  # Drops the key operand.
    return impl(*static, *operands)

  partitioned = custom_partitioning(keyed, static_argnums=tuple(range(num_static)))
  partitioned.def_partition(partition=partition, sharding_rule="key, " + rule,
                            reduction_factors=("b",) if summed_only else ())

  def call(*args, partition: str = "sharded"):
    static, operands = args[:num_static], args[num_static:]
    if partition not in PARTITIONS:
      raise ValueError(f"model.impl.partition must be one of {PARTITIONS}, got {partition!r}")
    if partition == "gathered":
      fn = lambda *ops: impl(*static, *ops)
    else:
      key = _key_operand(source_crc, static)
      fn = lambda *ops: partitioned(*static, key, *ops)
    return jax.custom_batching.sequential_vmap(fn)(*operands)

  call.source_crc = source_crc  # What the compile-cache key holds for this call's sources.
  return call
