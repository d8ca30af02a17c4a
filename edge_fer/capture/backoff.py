"""How long to wait between reconnection attempts, and when to give up.

Exponential backoff keeps a dead RTSP host or an unplugged camera from costing CPU and log
lines, and jitter keeps several cameras behind one switch from retrying in lock-step.
"""

from __future__ import annotations

import random

from edge_fer.config.settings import ReconnectSettings


class Backoff:
    """The delay sequence of one camera: initial, times ``factor`` up to the cap, each scaled by 1 ± jitter.

    ``policy`` is the camera's ``reconnect:`` settings model as it is (its ranges are checked there, once).
    """

    def __init__(self, policy: ReconnectSettings, rng: random.Random | None = None) -> None:
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
