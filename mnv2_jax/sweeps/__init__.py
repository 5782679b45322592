"""Ablation sweeps: combinators, experiment loading, validation, launching and W&B export.

Entry point: ``mnv2-sweep`` (``mnv2_jax.sweeps.launch:run``). Experiment files live in
``experiments/`` and use ``mnv2_jax.sweeps.combinators`` and ``mnv2_jax.sweeps.presets``.
"""
