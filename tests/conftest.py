"""Test-wide setup: CPU only, quiet TensorFlow, deterministic and fast compiles."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# One persistent JAX compilation cache for the whole test session (and its subprocesses): the
# trainer tests compile the same tiny train step in several processes.
os.environ.setdefault("MNV2_JAX_CACHE_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache",
    "mnv2_jax_compile_cache"))
