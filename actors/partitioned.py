"""Partitioned relaxation of one large problem across K Ray actors.

Each `BlockWorker` owns a contiguous range of modules (see emergence.energy.partition). One
global accelerated-gradient step is:

  1. propose  every worker extrapolates (momentum), takes its gradient step on its own modules
              and returns the new values its neighbours need as ghosts;
  2. evaluate the driver routes those boundary values; every worker returns its share of the
              energy at the proposed point;
  3. commit   the driver sums the shares and accepts the step only if the total energy did not
              increase, otherwise every worker rolls back and momentum restarts.

Because ghosts are exchanged every step and each block holds all couplings of its modules, the
iterates are those of the single-process accelerated method: same optimum, same step count.

    python -m actors.partitioned --n 1000000 --k 2
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import ray

from cluster.ray_session import ensure_ray
from emergence.energy import partition
from emergence.energy.relax import Momentum, floor_reason


@ray.remote(num_cpus=1)
class BlockWorker:
    def __init__(self, source: str, n: int, lo: int, hi: int, payload=None):
        if source == "dense_ring":
            self.block, x0 = partition.dense_ring_block(n, lo, hi)
        elif source == "arrays":
            landau, couplings, eta0 = payload
            self.block, x0 = partition.build_block(n, lo, hi, landau, couplings, eta0)
        else:
            raise ValueError(f"source: unknown block source {source!r}")
        self.x = x0
        self.x_prev = x0.copy()
        self.z = None
        self.grad = np.empty_like(x0)
        self.recv: dict[int, np.ndarray] = {}
        self.send: dict[int, np.ndarray] = {}

    def info(self) -> dict:
        b = self.block
        return {"lo": b.lo, "hi": b.hi, "ghosts": b.ghosts, "lipschitz": b.lipschitz(), "mu": b.strong_convexity()}

    def set_routes(self, send: dict[int, np.ndarray], recv: dict[int, np.ndarray]) -> None:
        """send[k]: local indices of own modules block k needs; recv[k]: ghost slots block k fills."""
        self.send, self.recv = send, recv

    def boundary(self, which: str = "x") -> dict[int, np.ndarray]:
        v = self.x if which == "x" else self.z
        return {k: v[idx] for k, idx in self.send.items()}

    def receive(self, values: dict[int, np.ndarray], which: str = "x") -> None:
        v = self.x if which == "x" else self.z
        for k, vals in values.items():
            v[self.recv[k]] = vals
        if which == "x":
            self.x_prev[:] = self.x

    def energy(self) -> float:
        return self.block.energy(self.x)

    def propose(self, beta: float, t: float) -> tuple[dict[int, np.ndarray], float]:
        x, xp = self.x, self.x_prev
        y = np.clip(x + beta * (x - xp), 0.0, 1.0) if beta > 0 else x
        _, g = self.block.grad_problem.energy_and_grad(y, self.grad)
        n_own = self.block.n_own
        z = y.copy()  # ghost entries are overwritten by `receive(..., "z")` before evaluation
        np.clip(y[:n_own] - t * g[:n_own], 0.0, 1.0, out=z[:n_own])
        self.z = z
        pg = float(np.max(np.abs(z[:n_own] - y[:n_own]))) / t if n_own else 0.0
        return self.boundary("z"), pg

    def evaluate_z(self, values: dict[int, np.ndarray]) -> float:
        self.receive(values, "z")
        return self.block.energy(self.z)

    def commit(self, accept: bool) -> None:
        if accept:
            self.x_prev, self.x = self.x, self.z
        else:
            self.x_prev = self.x.copy()  # momentum restart
        self.z = None

    def own_eta(self) -> np.ndarray:
        return self.x[: self.block.n_own].copy()


def _route(workers, boundaries: list[dict[int, np.ndarray]]) -> list[dict[int, np.ndarray]]:
    """Turn each worker's {dest: values} into each destination's {source: values}."""
    inbox = [dict() for _ in workers]
    for src, out in enumerate(boundaries):
        for dst, vals in out.items():
            inbox[dst][src] = vals
    return inbox


def start_workers(n: int, k: int, source: str = "dense_ring", payloads=None, num_cpus: float = 1):
    bounds = partition.block_bounds(n, k)
    workers = [
        BlockWorker.options(num_cpus=num_cpus).remote(source, n, int(bounds[b]), int(bounds[b + 1]), None if payloads is None else payloads[b])
        for b in range(k)
    ]
    infos = ray.get([w.info.remote() for w in workers])
    # routes: block b needs ghosts owned by others
    sends = [dict() for _ in range(k)]
    recvs = [dict() for _ in range(k)]
    for b, info in enumerate(infos):
        ghosts = info["ghosts"]
        owners = partition.owner_of(bounds, ghosts)
        n_own = info["hi"] - info["lo"]
        for o in np.unique(owners):
            o = int(o)
            mask = owners == o
            recvs[b][o] = n_own + np.flatnonzero(mask)
            sends[o][b] = ghosts[mask] - int(bounds[o])
    ray.get([w.set_routes.remote(sends[b], recvs[b]) for b, w in enumerate(workers)])
    # first ghost exchange so every block starts from the global eta0
    inbox = _route(workers, ray.get([w.boundary.remote("x") for w in workers]))
    ray.get([w.receive.remote(inbox[b], "x") for b, w in enumerate(workers)])
    return workers, infos


def relax_partitioned(workers, infos, max_steps: int = 5000, tol: float = 1e-9, target_energy: float | None = None,
                      target_gap: float | None = None, time_budget_s: float | None = None) -> dict:
    """The driver loop: global step size 1/L and momentum from the blocks' curvature bounds."""
    L = max(i["lipschitz"] for i in infos)
    mu = min(i["mu"] for i in infos)
    t = 1.0 / L if L > 0 else 1.0
    mom = Momentum(L, mu)
    t0 = time.perf_counter()
    e = float(sum(ray.get([w.energy.remote() for w in workers])))
    e0 = e
    target = None if target_energy is None or target_gap is None else target_energy + target_gap * max(e0 - target_energy, 0.0)
    energies, times = [e], [0.0]
    rejected, reason = 0, "max_steps"
    for _ in range(max_steps):
        beta = mom.beta()
        proposals = ray.get([w.propose.remote(beta, t) for w in workers])
        pg = max(p[1] for p in proposals)
        inbox = _route(workers, [p[0] for p in proposals])
        ez = float(sum(ray.get([w.evaluate_z.remote(inbox[b]) for b, w in enumerate(workers)])))
        accept = math.isfinite(ez) and ez <= e
        ray.get([w.commit.remote(accept) for w in workers])
        if accept:
            e = ez
            energies.append(e)
            times.append(time.perf_counter() - t0)
            mom.accepted()
            if pg <= tol:
                reason = "tol"
                break
            if target is not None and e <= target:
                reason = "target_gap"
                break
        else:
            rejected += 1
            if not mom.on:
                # a plain 1/L step can only fail on round-off: as in the single-process solver
                reason = floor_reason(pg, t, e, tol)
                break
            mom.restart()
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            reason = "time_budget"
            break
    return {"energy": e, "initial_energy": e0, "steps": len(energies) - 1, "rejected": rejected, "reason": reason,
            "wall_time_s": time.perf_counter() - t0, "energies": energies, "times": times}


def gather_eta(workers) -> np.ndarray:
    return np.concatenate(ray.get([w.own_eta.remote() for w in workers]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="Relax the dense gated ring across K actors.")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=5000)
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--json", default=None, help="write the summary here")
    args = ap.parse_args(argv)
    if args.n < 3:
        ap.error("--n: the ring needs at least 3 modules")
    if not 1 <= args.k <= args.n:
        ap.error("--k: need 1 <= k <= n")
    ensure_ray()  # the job's cluster, else make run's head, else a private Ray
    t = time.perf_counter()
    workers, infos = start_workers(args.n, args.k, num_cpus=min(1, ray.available_resources().get("CPU", 1) / args.k))
    build_s = time.perf_counter() - t
    out = relax_partitioned(workers, infos, max_steps=args.max_steps, tol=args.tol)
    out.pop("times")
    out["energies"] = out["energies"][-1:]
    out.update(n=args.n, k=args.k, build_s=build_s)
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    for w in workers:
        ray.kill(w)
    return out


if __name__ == "__main__":
    main()
