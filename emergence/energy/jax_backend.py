"""JAX backend: the same energy as the numpy terms, JIT-compiled, with autodiff gradients.

Used to cross-check the hand-written numpy gradients (they agree to 1e-9 in float64) and as
the path to accelerators. float64 is enabled only inside this module's calls, so importing it
does not flip JAX's global precision for other code (NVP trains in float32).
"""

from __future__ import annotations

import numpy as np

from .problem import EnergyProblem


class JaxEnergy:
    def __init__(self, problem: EnergyProblem):
        import jax

        self._jax = jax
        terms = [(problem.weight(k), t) for k, t in problem.terms.items() if problem.weight(k) != 0.0]
        missing = [t.family for _, t in terms if not hasattr(t, "jax_energy")]
        if missing:
            raise ValueError(f"terms: families without a JAX energy: {missing}")

        def energy(eta):
            total = 0.0
            for w, t in terms:
                total = total + w * t.jax_energy(eta)
            return total

        with jax.enable_x64(True):
            self._energy = jax.jit(energy)
            self._value_and_grad = jax.jit(jax.value_and_grad(energy))

    def _arg(self, eta):
        return self._jax.numpy.asarray(np.asarray(eta, dtype=np.float64))

    def energy(self, eta: np.ndarray) -> float:
        with self._jax.enable_x64(True):
            return float(self._energy(self._arg(eta)))

    def energy_and_grad(self, eta: np.ndarray) -> tuple[float, np.ndarray]:
        with self._jax.enable_x64(True):
            e, g = self._value_and_grad(self._arg(eta))
            return float(e), np.asarray(g, dtype=np.float64)
