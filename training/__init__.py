"""Ray Train entrypoints, each runnable as `python -m training.NAME` and under `ray job submit`: `nvp` (data-parallel JaxTrainer)."""
