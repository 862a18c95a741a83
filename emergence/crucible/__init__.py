"""The Digital Crucible's library: problems, and (to come) rewards and the curriculum for PPO
fine-tuning of the engine. No Ray here; `training.crucible` is the Ray layer."""

from .problems import (Problem, ProblemFileError, as_task, from_task, load_problems, parse_problem, save_problems,
                       to_task)

__all__ = ["Problem", "ProblemFileError", "as_task", "from_task", "load_problems", "parse_problem", "save_problems",
           "to_task"]
