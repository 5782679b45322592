"""`train_and_evaluate` for a config with a `head` section: SSDLite detection or DeepLabv3.

The classifier's loop (`mnv2_jax.train`) with the task's step, data and evaluation, and the
same contracts: every check before anything is written (`dense.tasks.build_model`, the
dataset's sizes, the batch over the mesh, the workdir), state created replicated on the mesh
(`jax.jit` with `NamedSharding`s, batch sharded on its leading axis), orbax checkpoints with
exact resume of the state (the input stream is re-created at the resumed step), non-finite
checks before every save, SIGTERM = save and stop, summary.json written atomically through the
run record (`run_record.Summary`, with `task`, `metric` and the head's MAdds / params).
A fresh run's backbone can start from a trained classifier (`config.init`,
`mnv2_jax.backbone_init`: checked with the rest, loaded before the state is created); a
resumed run restores its own checkpoint and reads nothing from the source.

Not here yet: BN recalibration and several processes (mAP is computed on one host).
"""

from __future__ import annotations

import time
from typing import Any

from absl import logging
import jax
import numpy as np

from mnv2_jax import backbone_init
from mnv2_jax import checkpointing
from mnv2_jax import compile_cache
from mnv2_jax import logging as mlog
from mnv2_jax import optim
from mnv2_jax import parallel
from mnv2_jax import preemption
from mnv2_jax import run_record
from mnv2_jax import train_state
from mnv2_jax import validate
from mnv2_jax.dense import data as dense_data
from mnv2_jax.dense import detection
from mnv2_jax.dense import segmentation
from mnv2_jax.dense import tasks


def _periodic(step: int, every: int, total: int) -> bool:
  return step == total or (every > 0 and step % every == 0)


def check(config):
  """Every check of a dense run; returns (task, info, model, RunLength, backbone source)."""
  validate.check_fields(config)
  task = tasks.task_of(config)
  info = dense_data.info(config)
  length = validate.run_length(config, info)
  model = validate.check_model(config, info.num_classes)
  model = model.clone(backbone=train_state.resolve_impl(model.backbone))
  if config.train.bn_recalibration_batches:
    raise ValueError("train.bn_recalibration_batches must be 0 for dense heads (not built)")
  if jax.process_count() > 1:
    raise ValueError(f"dense heads train on one process for now ({jax.process_count()} "
                     "running): mAP / mIoU are computed on one host")
  parallel.check_batch_size(config.input.global_batch_size)
  parallel.check_batch_size(config.input.eval_batch_size, "input.eval_batch_size")
  return task, info, model, length, backbone_init.check(config, model)


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  task, info, model, length, source = check(config)
  validate.check_workdir(workdir, config)
  if config.compile_cache_dir != "off":
    compile_cache.enable(config.compile_cache_dir or None)
  mesh = parallel.make_mesh()
  metric = tasks.METRIC[task]
  resolution, global_batch = config.input.resolution, config.input.global_batch_size
  figures = tasks.figures(model, resolution)
  tx, schedule = optim.make_optimizer(config.optim, steps_per_epoch=length.steps_per_epoch,
                                      global_batch_size=global_batch,
                                      total_steps=length.total_steps)
  ema_decay = config.optim.ema_decay
  replicated = parallel.replicated(mesh)
  seed = np.int32(config.seed)

  def create(seed, pretrained=None):
    return train_state.create(model, tx, seed=seed, resolution=resolution, ema=ema_decay > 0,
                              pretrained=pretrained)

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
  else:
    pretrained = None
    if source is not None:  # config.init: the backbone from a trained classifier.
      pretrained = backbone_init.load(
          source, {"params": abstract.params, "batch_stats": abstract.batch_stats},
          model.backbone, resolution)
      logging.info("backbone initialized from %s %s (step %s)", source.kind, source.path,
                   source.step)
    state = jax.jit(create, out_shardings=state_sharding)(seed, pretrained)
    start = 0

  writer = mlog.create_writers(
      workdir, config.wandb, process_index=jax.process_index(),
      config_dict={**config.to_dict(), "task": task, "madds": figures.madds,
                   "params": figures.params, "madds_space_to_batch":
                   figures.madds_space_to_batch, "num_classes": info.num_classes,
                   "steps_per_epoch": length.steps_per_epoch,
                   "total_steps": length.total_steps},
      resume_step=start, wandb_run_id=meta.get("wandb_run_id"))
  use_ema = ema_decay > 0 and config.train.eval_ema
  best = {"best/metric": meta.get("best/metric", run_record.NO_EVAL),
          "best_step": meta.get("best_step", -1)}
  wall_before, t0 = float(meta.get("wall_time_s", 0.0)), time.time()

  def summary(status: str, final: dict | None = None, **extra) -> dict[str, Any]:
    evaluated = best["best_step"] >= 0
    return run_record.Summary.of_dense(
        config, task=task, metric=metric, madds=figures.madds, params=figures.params,
        status=status, steps=length.total_steps,
        epochs=length.total_steps / length.steps_per_epoch,
        eval_weights="ema" if use_ema else "raw", wall_time_s=wall_before + time.time() - t0,
        final_metric=final[f"eval/{metric}"] if final else None,
        final_loss=final["eval/loss"] if final else None,
        best_metric=best["best/metric"] if evaluated else None,
        best_step=best["best_step"] if evaluated else None, **extra).to_json()

  writer.write_summary(summary("running"))
  sharded = dict(in_shardings=(state_sharding, parallel.batch_sharding(mesh)),
                 out_shardings=(state_sharding, replicated), donate_argnums=(0,))
  if task == "detection":
    anchors = detection.anchors_for(model, resolution)
    loss_cfg = dict(config.head.loss)
    step_fn = detection.make_train_step(model, tx, schedule, anchors=anchors,
                                        loss_cfg=loss_cfg, ema_decay=ema_decay)
    eval_step = jax.jit(detection.make_eval_step(model, anchors=anchors, loss_cfg=loss_cfg))

    def run_eval(variables, batches):
      return detection.evaluate(eval_step, variables, batches, mesh, anchors=anchors,
                                num_classes=info.num_classes,
                                postprocess_cfg=dict(config.head.postprocess))
  else:
    ignore = config.head.ignore_label
    step_fn = segmentation.make_train_step(model, tx, schedule, ignore_label=ignore,
                                           ema_decay=ema_decay)
    eval_step = jax.jit(segmentation.make_eval_step(model, num_classes=info.num_classes,
                                                    ignore_label=ignore))

    def run_eval(variables, batches):
      return segmentation.evaluate(eval_step, variables, batches, mesh)

  train_step = jax.jit(step_fn, **sharded)
  eval_split = dense_data.eval_batches(config, task)
  stream = dense_data.train_stream(config, task, start_step=start)
  progress = mlog.ConsoleProgress(length.total_steps, global_batch, start_step=start)
  pending: list[tuple[int, dict]] = []

  def flush() -> dict[str, float]:
    nonlocal pending
    fetched = jax.device_get([m for _, m in pending])
    for (s, _), m in zip(pending, fetched):
      if not np.isfinite(m["loss"]):
        writer.write_summary(summary("failed", error=f"non-finite loss at step {s}"))
        raise FloatingPointError(f"non-finite loss {m['loss']} at step {s}; the last good "
                                 f"checkpoint is {ckpt.latest_step()} in {ckpt.directory}")
    means = {f"train/{k}": float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    pending = []
    return means

  final = None
  try:
    with preemption.StopAtSignal() as stop_signal:
      for step in range(start + 1, length.total_steps + 1):
        state, metrics = train_step(state, parallel.global_batch(mesh, next(stream)))
        pending.append((step, metrics))
        stop = stop_signal.requested(step)
        if _periodic(step, config.train.log_every_steps, length.total_steps) or stop:
          scalars = flush()
          scalars.update(progress.update(step, scalars))
          writer.write_scalars(step, scalars)
        if _periodic(step, length.eval_every, length.total_steps):
          final = run_eval(train_state.eval_variables(state, use_ema=use_ema), eval_split)
          if final[f"eval/{metric}"] > best["best/metric"]:
            best.update({"best/metric": final[f"eval/{metric}"], "best_step": step})
          writer.write_scalars(step, {k: v for k, v in final.items() if np.isfinite(v)})
          logging.info("step %d eval: %s %.4f loss %.4f", step, metric,
                       final[f"eval/{metric}"], final["eval/loss"])
          progress.reset_window(step)
        if _periodic(step, ckpt.every_steps, length.total_steps) or stop:
          if pending:
            flush()
          if not all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state)
                     if np.issubdtype(x.dtype, np.floating)):
            writer.write_summary(summary("failed", error=f"non-finite state after step {step}"))
            raise FloatingPointError(f"non-finite values in the state after step {step}; "
                                     "not saved")
          ckpt.save(step, state, {**best, "wall_time_s": wall_before + time.time() - t0,
                                  "wandb_run_id": writer.run_id},
                    wait=stop or step == length.total_steps)
        if stop and step < length.total_steps:
          writer.write_summary(summary("preempted", final))
          raise preemption.Preempted(f"SIGTERM: stopped after step {step}, checkpoint saved in "
                          f"{ckpt.directory}")
    if final is None:
      final = run_eval(train_state.eval_variables(state, use_ema=use_ema), eval_split)
    result = summary("finished", final)
    writer.write_summary(result)
    return result
  finally:
    ckpt.close()
    writer.close()
