"""Which difficulty level the crucible trains on, and when it moves up.

Start where the policy sometimes succeeds (measured before training, per level); promote when the
success rate over the last `window` episodes of the current level reaches `promote_at`; keep
drawing a share (`review`) of problems from earlier levels so what was learnt stays learnt. Every
promotion is kept in `events`, and `state()` / `from_state()` carry all of it through a checkpoint.
"""

from __future__ import annotations

import random
from collections import deque


class Curriculum:
    def __init__(self, levels, promote_at: float = 0.6, window: int = 50, review: float = 0.2,
                 start: int | None = None):
        levels = sorted(set(levels))
        if not levels or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in levels):
            raise ValueError(f"levels must be integers >= 1, got {levels!r}")
        if not 0 < promote_at <= 1:
            raise ValueError(f"promote_at must be in (0, 1], got {promote_at!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        if not 0 <= review < 1:
            raise ValueError(f"review must be in [0, 1), got {review!r}")
        if start is not None and start not in levels:
            raise ValueError(f"start level {start!r} is not one of {levels}")
        self.levels, self.promote_at, self.window, self.review = levels, promote_at, window, review
        self.level = levels[0] if start is None else start
        self.recent: dict[int, deque] = {lv: deque(maxlen=window) for lv in levels}
        self.episodes = 0
        self.events: list[dict] = []

    @staticmethod
    def starting_level(success: dict, promote_at: float = 0.6) -> int:
        """From the starting policy's success rate per level: the lowest level it sometimes but
        not yet reliably solves; else the lowest it does not yet master; else the top level."""
        if not success:
            raise ValueError("need the success rate of at least one level")
        levels = sorted(success)
        sometimes = [lv for lv in levels if 0 < success[lv] < promote_at]
        if sometimes:
            return sometimes[0]
        unmastered = [lv for lv in levels if success[lv] < promote_at]
        return unmastered[0] if unmastered else levels[-1]

    def rate(self, level: int | None = None) -> float | None:
        """The success rate over the last `window` episodes of a level (None before any)."""
        seen = self.recent[self.level if level is None else level]
        return sum(seen) / len(seen) if seen else None

    def record(self, level: int, success: bool) -> dict | None:
        """Count one episode; returns the promotion it caused, if any."""
        if level not in self.recent:
            raise ValueError(f"level {level!r} is not one of {self.levels}")
        self.episodes += 1
        self.recent[level].append(bool(success))
        seen = self.recent[self.level]
        higher = [lv for lv in self.levels if lv > self.level]
        if level == self.level and higher and len(seen) == self.window and self.rate() >= self.promote_at:
            event = {"episode": self.episodes, "from": self.level, "to": higher[0], "rate": self.rate()}
            self.level = higher[0]
            self.events.append(event)
            return event
        return None

    def sample_level(self, rng: random.Random) -> int:
        """The level of the next problem: the current one, or (a `review` share) an earlier one."""
        earlier = [lv for lv in self.levels if lv < self.level]
        if earlier and rng.random() < self.review:
            return rng.choice(earlier)
        return self.level

    def state(self) -> dict:
        return {"levels": self.levels, "promote_at": self.promote_at, "window": self.window, "review": self.review,
                "level": self.level, "episodes": self.episodes, "events": list(self.events),
                "recent": {str(lv): list(d) for lv, d in self.recent.items()}}

    @classmethod
    def from_state(cls, state: dict) -> "Curriculum":
        c = cls(state["levels"], state["promote_at"], state["window"], state["review"], state["level"])
        c.episodes, c.events = state["episodes"], list(state["events"])
        for lv, seen in state["recent"].items():
            c.recent[int(lv)].extend(seen)
        return c
