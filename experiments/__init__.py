"""Experiment (study) files for ``mnv2-sweep``; each is also loadable by path.

See ``mnv2_jax.sweeps.studies`` for the contract (``PRESETS``, ``get_sweep``).
"""
