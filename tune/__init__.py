"""Ray Tune sweeps over the energy library.

    python -m tune.coupling --search grid --quick     # coupling / gate-cost sweep -> Parquet + heatmap

Importing this package imports nothing from Ray; the sweep modules import it when they run.
(This top-level package is unrelated to `ray.tune`, which the modules use as `from ray import tune`.)
"""
