"""Sweep reports: result tables, figures and a W&B report run together (`mnv2-report`).

Above `results` and `plots` in the layering (it imports both; neither imports it), so that the
W&B report run, which holds tables and figures, does not tie those two into a circle.
"""
