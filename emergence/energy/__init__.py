"""Energy coordination: modules with order parameters eta in [0, 1], Landau local energies,
sparse couplings, and relaxation methods that lower the total free energy.

    from emergence.energy import problem_from_spec, relax
    result = relax(problem_from_spec(spec), method="accelerated")
"""

from .modules import MODULE_KINDS, gate_eta, gate_hazard, register_module_kind, sequence_eta
from .problem import EnergyProblem
from .relax import METHODS, RelaxConfig, RelaxResult, RelaxTrace, delta_f90, relative_gap, relax
from .spec import COUPLING_FAMILIES, SpecError, problem_from_spec, register_coupling_family
from .terms import EnergyTerm, GateBenefitCoupling, HingeCoupling, LandauTerm, QuadraticCoupling

__all__ = [
    "COUPLING_FAMILIES",
    "METHODS",
    "MODULE_KINDS",
    "EnergyProblem",
    "EnergyTerm",
    "GateBenefitCoupling",
    "HingeCoupling",
    "LandauTerm",
    "QuadraticCoupling",
    "RelaxConfig",
    "RelaxResult",
    "RelaxTrace",
    "SpecError",
    "delta_f90",
    "gate_eta",
    "gate_hazard",
    "problem_from_spec",
    "register_coupling_family",
    "register_module_kind",
    "relative_gap",
    "relax",
    "sequence_eta",
]
