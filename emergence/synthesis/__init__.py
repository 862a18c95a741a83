"""The Emergence Engine's DSL: typed action primitives (`ops`), programs and their type checker
(`program`), a compiler to readable standalone Python (`compiler`), and safe in-process running
and tracing of generated programs (`runtime`). No Ray here."""

from .compiler import CompiledTool, compile_program
from .ops import OPS, PRIMITIVES
from .program import Program, Step, check
from .runtime import EffectsRefused, build_callable, trace
from .types import TypeCheckError

__all__ = ["CompiledTool", "EffectsRefused", "OPS", "PRIMITIVES", "Program", "Step", "TypeCheckError",
           "build_callable", "check", "compile_program", "trace"]
