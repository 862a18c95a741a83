"""Next-vector prediction (NVP) of 2-D energy fields: the atlas data format, synthetic physics
generators, and (in later increments) the Flax model, thermodynamic loss and evaluator."""
