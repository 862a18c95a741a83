"""`EnergyCoordinator`: a Ray actor that holds named energy problems.

    coord = EnergyCoordinator.options(name="energy").remote()
    ray.get(coord.build.remote("ring", spec))          # spec: see emergence.energy.spec
    ray.get(coord.relax.remote("ring", method="accelerated"))
    ray.get(coord.query.remote("ring"))
    ray.get(coord.drop.remote("ring"))

Lightweight (num_cpus=0 by default) so several fit next to Serve replicas on a small machine;
give it CPUs with `.options(num_cpus=...)` for large problems.
"""

from __future__ import annotations

import time

import ray

from emergence.energy.relax import RelaxConfig, relax
from emergence.energy.spec import problem_from_spec


class _Metrics:
    """Custom metrics on Ray's metrics port (created inside the actor process)."""

    def __init__(self):
        from ray.util.metrics import Counter, Gauge, Histogram

        self.relaxations = Counter("emergence_coordinator_relaxations", "Relaxations run by coordinators", tag_keys=("method",))
        self.steps = Histogram("emergence_coordinator_relax_steps", "Accepted steps per relaxation",
                               boundaries=[1, 10, 30, 100, 300, 1000, 3000, 10000], tag_keys=("method",))
        self.seconds = Histogram("emergence_coordinator_relax_seconds", "Wall time per relaxation",
                                 boundaries=[0.001, 0.01, 0.1, 1, 10, 100], tag_keys=("method",))
        # tagged by method, not problem name: names are user-chosen and would grow the label set without bound
        self.energy = Gauge("emergence_coordinator_final_energy", "Final energy of the last relaxation", tag_keys=("method",))


@ray.remote(num_cpus=0)
class EnergyCoordinator:
    def __init__(self):
        self._problems: dict[str, dict] = {}
        self._metrics = _Metrics()

    def build(self, name: str, spec: dict) -> dict:
        if not isinstance(name, str) or not name:
            raise ValueError("name: expected a non-empty string")
        problem = problem_from_spec(spec)  # raises SpecError naming the bad field
        self._problems[name] = {"problem": problem, "eta": problem.eta0.copy(), "last": None}
        return {"name": name, "n": problem.n, "terms": sorted(problem.terms), "energy": problem.energy(problem.eta0)}

    def _get(self, name: str) -> dict:
        if name not in self._problems:
            raise KeyError(f"name: no problem called {name!r}; have {sorted(self._problems)}")
        return self._problems[name]

    def relax(self, name: str, return_eta: bool = True, **config) -> dict:
        """Relax from the problem's current eta (a second call continues; `reset` restarts)."""
        entry = self._get(name)
        cfg = RelaxConfig(**config)
        result = relax(entry["problem"], entry["eta"], cfg)
        entry["eta"] = result.eta
        entry["last"] = result.summary()
        m = self._metrics
        m.relaxations.inc(1, tags={"method": cfg.method})
        m.steps.observe(result.steps, tags={"method": cfg.method})
        m.seconds.observe(result.wall_time_s, tags={"method": cfg.method})
        m.energy.set(result.energy, tags={"method": cfg.method})
        out = dict(entry["last"], trace=result.trace.to_dict())
        if return_eta:
            out["eta"] = result.eta.tolist()
        return out

    def query(self, name: str) -> dict:
        entry = self._get(name)
        p, eta = entry["problem"], entry["eta"]
        return {
            "name": name,
            "n": p.n,
            "eta": eta.tolist(),
            "energy": p.energy(eta),
            "term_energies": p.term_energies(eta),
            "projected_gradient_norm": p.projected_gradient_norm(eta),
            "last_relaxation": entry["last"],
        }

    def budgets(self, name: str) -> dict:
        """Per-term energy and gradient-norm budgets at the current eta (columns of a table)."""
        from emergence.energy.observability import term_budgets

        entry = self._get(name)
        return term_budgets(entry["problem"], entry["eta"]).to_dict(as_series=False)

    def reset(self, name: str) -> None:
        entry = self._get(name)
        entry["eta"] = entry["problem"].eta0.copy()

    def drop(self, name: str) -> bool:
        return self._problems.pop(name, None) is not None

    def names(self) -> list[str]:
        return sorted(self._problems)

    def ping(self) -> float:
        return time.time()


def get_or_create_coordinator(name: str = "energy-coordinator", namespace: str = "emergence"):
    """A named, detached coordinator shared by the Serve app, jobs and the CLI."""
    return EnergyCoordinator.options(name=name, namespace=namespace, get_if_exists=True, lifetime="detached").remote()


__all__ = ["EnergyCoordinator", "get_or_create_coordinator"]
