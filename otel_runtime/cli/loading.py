"""Finding the flow a ``path/to/file.py:flow`` target names."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from otel_runtime._engine.flows import Flow
from otel_runtime.cli.errors import CliError, print_user_traceback

__all__ = ["find_flow", "parse_target"]


def _module_name(path: Path) -> str:
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules:
        return stem
    return "__otel_runtime_flow_" + "".join(c if c.isalnum() else "_" for c in stem)


def import_file(path: Path) -> types.ModuleType:
    """Import the Python file at ``path`` as a module, with its folder on ``sys.path`` as a script has."""
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[name] = module  # worker processes and pickle find its tasks by this name
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        print_user_traceback(error)
        raise CliError(f"importing {path} failed: {type(error).__name__}: {error}", 1) from None
    return module


def parse_target(target: str) -> tuple[Path, str]:
    """The file and the flow name of ``path/to/file.py:name``; the file must exist."""
    path_text, separator, name = target.rpartition(":")
    if not separator or not path_text or not name:
        raise CliError(f"expected path/to/file.py:flow_function, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"no such file: {path_text}")
    return path, name


def find_flow(module: types.ModuleType, name: str, path: Path) -> Flow[..., Any]:
    """The flow ``name`` of ``module``: a module attribute, or else a flow with that name."""
    flows = {key: value for key, value in vars(module).items() if isinstance(value, Flow)}
    found = getattr(module, name, None)
    if found is None:
        found = next((value for value in flows.values() if value.name == name), None)
    if found is None:
        known = ", ".join(sorted(flows)) or "none (decorate a function with @flow)"
        raise CliError(f"no flow {name!r} in {path}; flows there: {known}")
    if not isinstance(found, Flow):
        raise CliError(f"{name!r} in {path} is not a flow: decorate it with @flow")
    return found
