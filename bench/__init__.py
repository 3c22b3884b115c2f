"""Benchmarks of the inference core against ``transformers.pipeline("fill-mask")``.

Run with ``make bench`` (or ``python -m bench``). Checkpoints with real dimensions and
random weights are built once into ``bench/.cache``: compute cost is the real models'.
"""
