"""Which baggage keys leave the process: the key policy (``propagation.configure_baggage``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from otel_runtime._base import keys as _keys
from otel_runtime.environment_variables import OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS

__all__ = ["RUN_KEYS", "BaggagePolicy", "get_policy", "set_policy"]

RUN_KEYS: Final = frozenset(_keys.BAGGAGE_KEYS)


@dataclass(frozen=True, slots=True)
class BaggagePolicy:
    """Which baggage keys leave the process.

    ``allowed_keys``: the keys, besides otel_runtime's own, that may be sent; ``None`` sends every key.
    A key ending in ``*`` allows every key with that prefix. ``run_keys``: whether otel_runtime's run
    identity (``flow_run.id``, ``deployment.name``, ...) is sent; without it, workers and services
    you call cannot tell which run they serve.
    """

    allowed_keys: frozenset[str] | None = None
    run_keys: bool = True

    def allows(self, key: str) -> bool:
        """Whether ``key`` may be sent."""
        if key in RUN_KEYS:
            return self.run_keys
        allowed = self.allowed_keys
        if allowed is None or key in allowed:
            return True
        return any(pattern.endswith("*") and key.startswith(pattern[:-1]) for pattern in allowed)

    @classmethod
    def from_environment(cls) -> BaggagePolicy:
        """The policy ``OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS`` describes (every key when it is unset)."""
        raw = os.environ.get(OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS)
        if raw is None or not raw.strip():
            return cls()
        names = [name.strip() for name in raw.split(",") if name.strip()]
        if [name.lower() for name in names] == ["none"]:
            return cls(allowed_keys=frozenset())
        return cls(allowed_keys=frozenset(names))


_policy: BaggagePolicy | None = None


def get_policy() -> BaggagePolicy:
    """The process's baggage policy: the last ``set_policy``, else the environment's (read once)."""
    global _policy  # noqa: PLW0603 - one immutable policy, replaced whole
    policy = _policy
    if policy is None:
        policy = _policy = BaggagePolicy.from_environment()
    return policy


def set_policy(policy: BaggagePolicy | None) -> None:
    """Make ``policy`` the process's baggage policy (``None``: read the environment again)."""
    global _policy  # noqa: PLW0603 - one immutable policy, replaced whole
    _policy = policy


BaggagePolicy.__module__ = "otel_runtime.propagation"
