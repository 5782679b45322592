"""Paper-style figures of sweep results: Fig. 5 (top-1 vs MAdds) and Fig. 6 (curves).

Entry point: ``mnv2-plot`` (``mnv2_jax.plots.cli:run``). Matplotlib runs headless (Agg).
"""
