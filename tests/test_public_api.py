"""The public API is pinned: every public module's ``__all__`` and the signatures users call.

A change to the public surface fails here until the snapshot is rewritten on purpose:
``python tests/test_public_api.py --update`` (then review the diff of ``tests/snapshots/public_api.json``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).parent / "snapshots" / "public_api.json"

PUBLIC_MODULES = (
    "otel_runtime",
    "otel_runtime.cache_policies",
    "otel_runtime.context",
    "otel_runtime.environment_variables",
    "otel_runtime.exceptions",
    "otel_runtime.futures",
    "otel_runtime.logging",
    "otel_runtime.propagation",
    "otel_runtime.runtime",
    "otel_runtime.states",
    "otel_runtime.task_runners",
    "otel_runtime.tasks",
    "otel_runtime.testing",
)
LAZY_MODULES = tuple(f"otel_runtime.runtime.{name}" for name in ("deployment", "flow_run", "task_run"))
SIGNATURES = (
    ("otel_runtime", "flow"),
    ("otel_runtime", "task"),
    ("otel_runtime", "configure"),
    ("otel_runtime.logging", "configure_logging"),
)


def current_api() -> dict[str, Any]:
    modules = {name: sorted(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}
    lazy = {name: sorted(dir(importlib.import_module(name))) for name in LAZY_MODULES}
    signatures = {
        f"{module}.{name}": str(inspect.signature(getattr(importlib.import_module(module), name)))
        for module, name in SIGNATURES
    }
    return {"__all__": modules, "runtime attributes": lazy, "signatures": signatures}


def test_public_names_and_signatures_match_the_snapshot() -> None:
    """No public name, runtime attribute or signature of flow/task/configure/configure_logging changed."""
    assert current_api() == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_public_name_resolves() -> None:
    """Each name in each public ``__all__`` is importable from its module."""
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        missing = [attribute for attribute in module.__all__ if not hasattr(module, attribute)]
        assert missing == [], (name, missing)


def test_public_classes_show_their_public_module() -> None:
    """Reprs of public classes name a public module that exports them under their own name, not a
    private one (an alias such as ``PrefectFuture`` shows the module of the class it names)."""
    homes: dict[type, set[str]] = {}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.isclass(value) and value.__name__ == attribute:
                homes.setdefault(value, set()).add(name)
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if inspect.isclass(value):
                assert value.__module__ in homes.get(value, {name}), (
                    f"{name}.{attribute} says it lives in {value.__module__}"
                )


if __name__ == "__main__" and sys.argv[1:] == ["--update"]:
    SNAPSHOT.write_text(json.dumps(current_api(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
