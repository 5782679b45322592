"""Sweep results: collection from run dirs / W&B offline runs, tables, statistics, Pareto.

Entry point: ``mnv2-results`` (``mnv2_jax.results.cli:run``).
"""
