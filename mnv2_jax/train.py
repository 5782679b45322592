"""`train_and_evaluate(config, workdir)`: the training loop, from config to summary.json.

Order of events (each numbered step happens before the next can write or compile anything):
1. `validate.check_config`, then `validate.check_workdir`: bad fields, an unprepared dataset,
   impossible durations (warm-up longer than the run, ...), a batch that does not split over
   the devices or an unwritable workdir raise a clear error; nothing is written before the
   config passed every check (the workdir is created by `check_workdir`).
2. Mesh over all devices of all processes; state created already replicated (jit with
   `out_shardings`), or restored from the latest checkpoint in `workdir` (exact resume).
3. Loop: the data stream is a pure function of (seed, step) and dropout keys are
   `fold_in(rng, step)`, so a resumed run is bit-identical to an uninterrupted one. Metrics stay
   on device between log steps; non-finite losses are detected at every log step and before
   every checkpoint, and the state itself is checked for non-finite values before it is saved,
   so a diverged state is never saved.
4. Evaluation (exact: padded + masked) of the EMA weights when the EMA is on, periodic async
   checkpoints, SIGTERM = save and stop (`Preempted`; with several processes at a step they all
   agree on, `mnv2_jax.preemption`), final summary written atomically.
"""

from __future__ import annotations

import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from mnv2_jax import checkpointing
from mnv2_jax import compile_cache
from mnv2_jax import complexity
from mnv2_jax import data
from mnv2_jax import logging as mlog
from mnv2_jax import optim
from mnv2_jax import parallel
from mnv2_jax import preemption
from mnv2_jax import run_record
from mnv2_jax import steps as steps_lib
from mnv2_jax import train_state
from mnv2_jax import validate
from mnv2_jax import train_dense
from mnv2_jax.dense import tasks as dense_tasks


Preempted = preemption.Preempted


def _periodic(step: int, every: int, total: int) -> bool:
  return step == total or (every > 0 and step % every == 0)


def eval_batches(config) -> data.EvalBatches:
  """This process's share of the eval split, re-iterable (built once per run)."""
  return data.make_eval_batches(
      config.input, global_batch_size=config.input.eval_batch_size,
      process_index=jax.process_index(), process_count=jax.process_count())


def evaluate(eval_step, variables, batches: data.EvalBatches, mesh) -> dict[str, float]:
  """Exact evaluation over the whole eval split (every example counted once).

  `batches` is `eval_batches(config)`; a run that evaluates often builds it once.
  """
  totals = None
  for local in batches:
    out = eval_step(variables, parallel.global_batch(mesh, local))
    totals = out if totals is None else jax.tree.map(lambda a, b: a + b, totals, out)
  totals = jax.device_get(totals)
  count = float(totals["count"])
  return {"eval/loss": float(totals["loss"]) / count, "eval/top1": float(totals["top1"]) / count,
          "eval/top5": float(totals["top5"]) / count, "eval/count": count}


def recalibrate_bn(bn_step, variables, batches) -> dict:
  """Precise BN: every layer's statistics recomputed over `batches` with the weights fixed.

  As pycls/detectron2's `update_bn_stats`: the new mean is the average of the per-batch means
  and the new variance the average of the per-batch (biased) variances, each batch normalised
  by its own statistics as in training. `bn_step` is `steps.make_bn_stats_step(model)` (jitted);
  `batches` yields global batches. Replaces `variables["batch_stats"]`; the rest is kept.
  """
  total, count = None, 0
  for batch in batches:
    moments = bn_step(variables, batch)
    total = moments if total is None else jax.tree.map(jnp.add, total, moments)
    count += 1
  if count == 0:
    raise ValueError("BN recalibration needs at least one batch")
  return {**variables, "batch_stats": jax.tree.map(lambda t: t / count, total)}


def recalibration_batches(config, mesh, num_batches: int):
  """`num_batches` global training batches (augmented, seed + 1) for `recalibrate_bn`."""
  stream = data.make_train_iterator(
      config.input, global_batch_size=config.input.global_batch_size, seed=config.seed + 1,
      process_index=jax.process_index(), process_count=jax.process_count())
  for _ in range(num_batches):
    yield parallel.global_batch(mesh, next(stream))


def _checkpoint_note(latest_step: int | None, directory: str, every_steps: int) -> str:
  """Where the last good checkpoint of a stopped run is, or that there is none."""
  if latest_step is None:
    return (f"No checkpoint was saved before it (train.checkpoint_every_steps={every_steps}), "
            f"so there is nothing to resume from in {directory}.")
  return f"The last good checkpoint (step {latest_step}) in {directory} is kept."


def nonfinite_loss_message(loss, step: int, latest_step: int | None, directory: str,
                           every_steps: int) -> str:
  """The error for a diverged run: where the last good checkpoint is, or that there is none."""
  return (f"non-finite training loss ({loss}) at step {step}; stopped. "
          + _checkpoint_note(latest_step, directory, every_steps))


def _all_finite(tree) -> bool:
  """True iff every floating-point leaf of `tree` is finite, checked on the host.

  On this process's replica of each leaf (the training state is replicated, so every process
  reaches the same answer). Not a jitted reduction: XLA:CPU takes ~6 s to compile one over the
  ~600 leaves of a MobileNetV2 state, once per process and state shape, while the host check
  takes ~10 ms; the state is copied to the host for the checkpoint right after anyway.
  """
  for x in jax.tree.leaves(tree):
    if jnp.issubdtype(x.dtype, jnp.floating):
      local = x.addressable_shards[0].data if isinstance(x, jax.Array) else x
      if not np.isfinite(np.asarray(local)).all():
        return False
  return True


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  """Trains `config` in `workdir` (resuming if a checkpoint is there); returns the summary.

  A config with a `head` section (detection / segmentation) is trained by `train_dense`.
  """
  if dense_tasks.task_of(config) != "classification":
    return train_dense.train_and_evaluate(config, workdir)
  checked = validate.check_config(config)  # fields, dataset, durations, model, mesh batch
  validate.check_workdir(workdir, config)  # the first thing that writes
  if config.compile_cache_dir != "off":
    compile_cache.enable(config.compile_cache_dir or None)
  mesh = parallel.make_mesh()
  logging.info("mesh: %d devices over %d processes", jax.device_count(), jax.process_count())

  info, model, global_batch = checked.info, checked.model, config.input.global_batch_size
  steps_per_epoch, total_steps = checked.length.steps_per_epoch, checked.length.total_steps
  eval_every = checked.length.eval_every
  cplx = complexity.analyze(model, config.input.resolution)
  tx, schedule = optim.make_optimizer(config.optim, steps_per_epoch=steps_per_epoch,
                                      global_batch_size=global_batch, total_steps=total_steps)
  ema_decay = config.optim.ema_decay
  replicated = parallel.replicated(mesh)

  # The seed is an argument, not a constant of the program: every seed of a configuration then
  # shares one compiled init program (and its persistent-cache entry; the init of a 0.35/32
  # digits model takes ~10 s to compile on CPU).
  seed = np.int32(config.seed)

  def create(seed):
    return train_state.create(model, tx, seed=seed, resolution=config.input.resolution,
                              ema=ema_decay > 0)

  abstract = jax.eval_shape(create, seed)
  state_sharding = jax.tree.map(lambda _: replicated, abstract)
  ckpt = checkpointing.Checkpointer(workdir, keep=config.train.keep_checkpoints,
                                    every_steps=config.train.checkpoint_every_steps)
  meta: dict[str, Any] = {}
  start = ckpt.latest_step()
  if start is not None:
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, state_sharding)
    state, meta = ckpt.restore(target)
    logging.info("Resumed from checkpoint step %d in %s", start, ckpt.directory)
  else:
    state = jax.jit(create, out_shardings=state_sharding)(seed)
    start = 0

  writer = mlog.create_writers(
      workdir, config.wandb, process_index=jax.process_index(),
      config_dict={**config.to_dict(), "madds": cplx.madds, "params": cplx.params,
                   "params_no_bn": cplx.params_no_bn, "num_classes": info.num_classes,
                   "impl_resolved": model.impl.to_dict(),
                   "steps_per_epoch": steps_per_epoch, "total_steps": total_steps},
      resume_step=start, wandb_run_id=meta.get("wandb_run_id"))
  use_ema = ema_decay > 0 and config.train.eval_ema
  base = dict(steps=total_steps, epochs=total_steps / steps_per_epoch,
              eval_weights="ema" if use_ema else "raw")
  best = {"best/top1": meta.get("best/top1", run_record.NO_EVAL),
          "best/top5": meta.get("best/top5", run_record.NO_EVAL),
          "best_step": meta.get("best_step", -1)}
  wall_before = float(meta.get("wall_time_s", 0.0))
  t0 = time.time()

  def summary(status: str, final: dict | None = None, **extra) -> dict[str, Any]:
    """summary.json now (`run_record.Summary`, as its JSON dict)."""
    evaluated = best["best_step"] >= 0
    if final:
      extra.update(final_top1=final["eval/top1"], final_top5=final["eval/top5"],
                   final_loss=final["eval/loss"])
    return run_record.Summary.of_config(
        config, cplx, status=status, **base, wall_time_s=wall_before + time.time() - t0,
        best_top1=best["best/top1"] if evaluated else None,
        best_top5=best["best/top5"] if evaluated else None,
        best_step=best["best_step"] if evaluated else None, **extra).to_json()

  def meta_now() -> dict[str, Any]:
    return {**best, "wall_time_s": wall_before + time.time() - t0,
            "wandb_run_id": writer.run_id}

  writer.write_summary(summary("running"))
  train_step = jax.jit(
      steps_lib.make_train_step(model, tx, schedule, num_classes=info.num_classes,
                                label_smoothing=config.optim.label_smoothing,
                                ema_decay=ema_decay),
      in_shardings=(state_sharding, parallel.batch_sharding(mesh)),
      out_shardings=(state_sharding, replicated), donate_argnums=(0,))
  eval_step = jax.jit(steps_lib.make_eval_step(model))
  eval_split = eval_batches(config)
  bn_step = jax.jit(steps_lib.make_bn_stats_step(model))
  stream = data.make_train_iterator(
      config.input, global_batch_size=global_batch, seed=config.seed, start_step=start,
      process_index=jax.process_index(), process_count=jax.process_count())
  progress = mlog.ConsoleProgress(total_steps, global_batch, start_step=start)
  pending: list[tuple[int, dict]] = []

  def flush_metrics() -> dict[str, float]:
    """Fetches the metrics since the last flush; raises if any loss is not finite."""
    nonlocal pending
    fetched = jax.device_get([m for _, m in pending])
    for (s, _), m in zip(pending, fetched):
      if not np.isfinite(m["loss"]):
        writer.write_summary(summary("failed", error=f"non-finite loss at step {s}"))
        raise FloatingPointError(nonfinite_loss_message(
            m["loss"], s, ckpt.latest_step(), ckpt.directory, ckpt.every_steps))
    means = {f"train/{k}": float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    pending = []
    return means

  final = None
  try:
    with preemption.StopAtSignal() as stop_signal:
      for step in range(start + 1, total_steps + 1):
        state, metrics = train_step(state, parallel.global_batch(mesh, next(stream)))
        pending.append((step, metrics))
        stop = stop_signal.requested(step)  # the same step on every process
        if _periodic(step, config.train.log_every_steps, total_steps) or stop:
          scalars = flush_metrics()
          scalars.update(progress.update(step, scalars))
          writer.write_scalars(step, scalars)
        if _periodic(step, eval_every, total_steps):
          variables = train_state.eval_variables(state, use_ema=use_ema)
          if config.train.bn_recalibration_batches > 0:
            variables = recalibrate_bn(bn_step, variables, recalibration_batches(
                config, mesh, config.train.bn_recalibration_batches))
          final = evaluate(eval_step, variables, eval_split, mesh)
          if final["eval/top1"] > best["best/top1"]:
            best.update({"best/top1": final["eval/top1"], "best/top5": final["eval/top5"],
                         "best_step": step})
          writer.write_scalars(step, final)
          logging.info("step %d eval: top1 %.4f top5 %.4f loss %.4f", step,
                       final["eval/top1"], final["eval/top5"], final["eval/loss"])
          progress.reset_window(step)
        if _periodic(step, ckpt.every_steps, total_steps) or stop:
          if pending:
            flush_metrics()
          # The loss of step s was computed before update s: check what is about to be saved.
          if not _all_finite(state):
            writer.write_summary(summary("failed", error=f"non-finite state after step {step}"))
            raise FloatingPointError(
                f"non-finite values in the training state after step {step} (its loss was "
                f"finite); stopped without saving it. "
                + _checkpoint_note(ckpt.latest_step(), ckpt.directory, ckpt.every_steps))
          ckpt.save(step, state, meta_now(), wait=stop or step == total_steps)
        if stop and step < total_steps:
          writer.write_summary(summary("preempted", final))
          raise Preempted(f"SIGTERM: stopped after step {step}, checkpoint saved in "
                          f"{ckpt.directory}")

    if final is None:  # resumed at the very end: evaluate what was restored
      final = evaluate(eval_step, train_state.eval_variables(state, use_ema=use_ema),
                       eval_split, mesh)
    result = summary("finished", final)
    writer.write_summary(result)
    return result
  finally:  # also on errors: finish pending (good) checkpoint writes, close the W&B run
    ckpt.close()
    writer.close()
