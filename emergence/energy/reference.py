"""The independent reference optimum: scipy's L-BFGS-B on the box [0, 1]^n.

One definition serves the benchmark, the Serve `with_optimum` answer, the Tune sweep's gap and
the tests, so "gap to E*" means the same thing everywhere.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .problem import EnergyProblem

OPTIONS = {"maxiter": 20_000, "maxfun": 40_000, "ftol": 1e-16, "gtol": 1e-12}


def lbfgsb_optimum(problem: EnergyProblem, x0: np.ndarray | None = None,
                   evaluate: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None) -> float:
    """E* = min of F over [0, 1]^n from L-BFGS-B with tight tolerances, started at x0 (default
    eta0). `evaluate(x) -> (F, grad)` replaces problem.energy_and_grad (the benchmark times it)."""
    from scipy.optimize import Bounds, minimize

    if evaluate is None:
        def evaluate(x):
            e, g = problem.energy_and_grad(x, np.empty(problem.n))
            return e, g

    start = np.clip(np.asarray(problem.eta0 if x0 is None else x0, dtype=np.float64), 0.0, 1.0)
    r = minimize(evaluate, start, jac=True, method="L-BFGS-B",
                 bounds=Bounds(np.zeros(problem.n), np.ones(problem.n)), options=OPTIONS)
    # the returned point is feasible, but re-evaluate it so E* is the energy of a box point
    return float(min(r.fun, problem.energy(np.clip(r.x, 0.0, 1.0))))
