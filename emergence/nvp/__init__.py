"""Next-vector prediction (NVP) of 2-D energy fields: the atlas data format (`atlas`), synthetic
physics (`synthetic`), the Flax model (`model`) and thermodynamic loss (`loss`), training pieces
and the inference model (`train`), metrics that separate a model from persistence (`metrics`), the
evaluator (`evaluate`), inference-time limits (`thermo`), the default served model (`default`) and
the prediction log (`vector_log`). No Ray here: `training.nvp` and `serving.predict` wrap it."""
