"""The Emergence Engine, no Ray here.

DSL: typed action primitives (`ops`), programs and their type checker (`program`), a compiler to
readable standalone Python (`compiler`), safe in-process running and tracing (`runtime`).
Learning: the corpus (`corpus`, `language`, `inputs`), intent encoders (`encoder`), the networks
(`models`) and their training (`fit`). Synthesis: type-constrained rounding (`decode`), argument
reading (`arguments`), ranking (`engine`, `calibrate`), the memory/sandbox pipeline (`pipeline`).
Evaluation: enumerative search baseline (`enumerative`), pass@k and task files (`evaluation`)."""

from .compiler import CompiledTool, compile_program
from .ops import OPS, PRIMITIVES
from .program import Program, Step, check
from .runtime import EffectsRefused, build_callable, trace
from .types import TypeCheckError

__all__ = ["CompiledTool", "EffectsRefused", "OPS", "PRIMITIVES", "Program", "Step", "TypeCheckError",
           "build_callable", "check", "compile_program", "trace"]
