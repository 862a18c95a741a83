"""One console line per epoch, with a progress bar, for training jobs.

Ray Train workers' output reaches the driver line by line (and into the job's log files), so a
`\\r`-redrawn bar would arrive as fragments: each epoch prints one finished line instead, its bar,
the figures that matter, the time an epoch takes and what is left.

    diffusion   12/56 [####·············]  21%  loss 0.0312  acc 0.912  3.2 s/epoch  eta 2m21s
"""

from __future__ import annotations

import math
import time
from typing import Callable, Mapping

BAR = 16


def bar(done: int, total: int, width: int = BAR) -> str:
    """`[####····]`: `done` of `total` as a bar `width` characters wide."""
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    filled = min(width, max(0, round(width * done / total)))
    return "[" + "#" * filled + "·" * (width - filled) + "]"


def duration(seconds: float) -> str:
    """4s, 2m21s, 1h05m: short and unambiguous."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def figure(value) -> str:
    """A metric for the console: 4 significant digits, integers and booleans as they are."""
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


class EpochProgress:
    """Lines for one phase of `total` epochs. `start` counts epochs done before this process began
    (a resumed run); the rate and the time left come from the epochs this process ran.

    >>> p = EpochProgress("epoch", 4, clock=iter([0.0, 2.0]).__next__)
    >>> p.line(1, {"loss": 0.5})
    'epoch 1/4 [####············]  25%  loss 0.5  2.0 s/epoch  eta 6s'
    """

    def __init__(self, phase: str, total: int, start: int = 0, clock: Callable[[], float] = time.monotonic):
        if total < 0:  # 0 is a phase that is skipped: it never has a line
            raise ValueError(f"{phase}: total epochs must be >= 0, got {total}")
        self.phase, self.total, self.start, self.clock = phase, total, start, clock
        self.t0 = clock()

    def line(self, epoch: int, metrics: Mapping[str, object] | None = None) -> str:
        """The line for `epoch` (1-based, just finished)."""
        ran = epoch - self.start
        per = (self.clock() - self.t0) / ran if ran > 0 else 0.0
        digits = len(str(self.total))
        parts = [f"{self.phase} {epoch:>{digits}}/{self.total} {bar(epoch, self.total)} {100 * epoch / self.total:3.0f}%"]
        parts += [f"{k} {figure(v)}" for k, v in (metrics or {}).items()]
        if ran > 0:
            parts.append(f"{per:.1f} s/epoch")
            parts.append(f"eta {duration(per * (self.total - epoch))}" if epoch < self.total else
                         f"took {duration(per * ran)}")
        return "  ".join(parts)
