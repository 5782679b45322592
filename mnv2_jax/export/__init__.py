"""Deployment: trained models as TF-Lite flatbuffers (`mnv2-export`) and their measured latency
(`mnv2-latency`) through the TF-Lite interpreter with XNNPACK, as the paper's Table 4 measures.

`tflite` converts and runs; `cli` is `mnv2-export`; `latency` / `latency_cli` are the benchmark.
Imports TensorFlow and LiteRT lazily, so `import mnv2_jax.export` is cheap.
"""
