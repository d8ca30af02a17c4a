"""How long to wait between reconnection attempts, and when to give up.

Exponential backoff keeps a dead RTSP host or an unplugged camera from costing CPU and log
lines, and jitter keeps several cameras behind one switch from retrying in lock-step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """``max_attempts``: consecutive failed attempts before the camera is declared ``failed``
    (None: keep trying forever). An attempt fails when ``open`` raises, or when the connection
    is lost again before it has been up for ``stable_after`` seconds; a connection that lasts
    that long resets both the delay and the attempt count."""

    initial_delay: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay <= self.max_delay:
            raise ValueError(f"need 0 < initial_delay <= max_delay, got {self.initial_delay} and {self.max_delay}")
        if self.factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {self.factor}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1 or None, got {self.max_attempts}")
        if self.stable_after < 0:
            raise ValueError(f"stable_after must be >= 0, got {self.stable_after}")


class Backoff:
    """The delay sequence of one camera: initial, doubling to the cap, each scaled by 1 ± jitter."""

    def __init__(self, policy: ReconnectPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self.attempts = 0

    def reset(self) -> None:
        self.attempts = 0

    @property
    def exhausted(self) -> bool:
        limit = self.policy.max_attempts
        return limit is not None and self.attempts >= limit

    def next_delay(self) -> float:
        """Count one failed attempt and return how long to wait before the next."""
        p = self.policy
        base = min(p.max_delay, p.initial_delay * p.factor ** min(self.attempts, 64))
        self.attempts += 1
        spread = base * p.jitter
        return min(p.max_delay, max(0.0, base + self._rng.uniform(-spread, spread)))
