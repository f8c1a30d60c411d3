"""The package's layering: imports point down the layers, and ``import otel_runtime`` stays light.

Layers, lowest first (the README's "Contributing" section draws the same map):

1. ``_base`` and ``environment_variables``: wire keys, settings, environment names (stdlib only);
2. ``_core``: run identity on the OpenTelemetry context (OpenTelemetry API only);
3. ``_engine`` and its public faces ``task_runners``, ``states``, ``futures``, ``exceptions``: flows, tasks,
   states, futures, task runners;
4. the surfaces: ``runtime``, ``context``, ``logging``, ``propagation``, ``_surface``;
5. ``_sdk``: SDK wiring (configure, exporters, export health, the local file), and the package facade
   ``otel_runtime/__init__.py``, which loads layer 5 only when one of its names is first used;
6. the tools: ``_tools``, ``cli``, ``testing``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import otel_runtime

PACKAGE_DIR = Path(otel_runtime.__file__).parent

LAYERS: dict[str, int] = {
    "otel_runtime._base": 1,
    "otel_runtime.environment_variables": 1,
    "otel_runtime._core": 2,
    "otel_runtime._engine": 3,
    "otel_runtime.task_runners": 3,
    "otel_runtime.states": 3,
    "otel_runtime.futures": 3,
    "otel_runtime.exceptions": 3,
    "otel_runtime.cache_policies": 3,
    "otel_runtime.tasks": 3,
    "otel_runtime._surface": 4,
    "otel_runtime.runtime": 4,
    "otel_runtime.context": 4,
    "otel_runtime.logging": 4,
    "otel_runtime.propagation": 4,
    "otel_runtime._sdk": 5,
    "otel_runtime": 5,
    "otel_runtime._tools": 6,
    "otel_runtime.cli": 6,
    "otel_runtime.testing": 6,
}

# Imports allowed to point up a layer: (importing module, imported module) -> why it must stay.
LATE_BOUND: dict[tuple[str, str], str] = {
    # The facade re-exports configure() and the drop counters; it imports them inside its
    # module-level __getattr__, on first use, so `import otel_runtime` loads no SDK exporter.
    ("otel_runtime", "otel_runtime._sdk"): "lazy re-export of the SDK wiring",
}

HEAVY_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter",
    "opentelemetry.proto",
    "google.protobuf",
    "grpc",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer of ``module``: the entry of its longest listed prefix."""
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    assert best, f"{module} is in no layer: add its folder to LAYERS and to the README's map"
    return LAYERS[best]


def is_submodule(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE_DIR / relative).with_suffix(".py").exists() or (PACKAGE_DIR / relative).is_dir()


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every ``otel_runtime`` module ``path`` imports anywhere: module level, functions, TYPE_CHECKING."""
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "otel_runtime":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "otel_runtime":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if is_submodule(candidate) else base


def package_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_every_import_in_the_package_points_down_the_layers() -> None:
    """No module imports a module of a higher layer, except the commented late-bound ones."""
    upward = []
    for path in package_files():
        importer = module_name(path)
        for line, imported in imported_modules(path):
            late_bound = any(
                importer == source and (imported == target or imported.startswith(target + "."))
                for source, target in LATE_BOUND
            )
            if layer_of(imported) > layer_of(importer) and not late_bound:
                upward.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line} {importer} -> {imported}")
    assert upward == [], "imports pointing up a layer:\n" + "\n".join(upward)


def test_the_layer_test_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    """The import walk finds imports inside functions and ``if TYPE_CHECKING:`` blocks too."""
    source = PACKAGE_DIR / "_base" / "_layer_probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from otel_runtime._engine.flows import Flow\n"
        "def f():\n    from otel_runtime.cli import main\n",
        encoding="utf-8",
    )
    try:
        found = {imported for _, imported in imported_modules(source)}
    finally:
        source.unlink()
    assert found == {"otel_runtime._engine.flows", "otel_runtime.cli"}


def test_every_late_bound_import_is_still_needed() -> None:
    """Each allow-listed upward import still exists, so the list cannot rot into a blanket pass."""
    seen = {
        (module_name(path), imported) for path in package_files() for _, imported in imported_modules(path)
    }
    for source, target in LATE_BOUND:
        used = any(s == source and (i == target or i.startswith(target + ".")) for s, i in seen)
        assert used, (source, target)


def loaded_after(statement: str) -> list[str]:
    code = f"import sys\n{statement}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(output))


def test_importing_the_package_loads_no_sdk_exporter_protobuf_or_grpc() -> None:
    """``import otel_runtime`` and ``import otel_runtime.runtime`` load layers 1-4 only."""
    statements = ("import otel_runtime", "import otel_runtime.runtime", "import otel_runtime.context")
    for statement in statements:
        loaded = loaded_after(statement)
        heavy = [name for name in loaded if name.startswith(HEAVY_MODULES)]
        upper = [n for n in loaded if n.startswith("otel_runtime.") and layer_of(n) > 4]
        assert heavy == [], (statement, heavy)
        assert upper == [], (statement, upper)


def test_only_a_task_with_cache_options_loads_the_caching_machinery() -> None:
    """``import otel_runtime`` and a plain task load neither the cache (hashlib, its file store) nor
    ``importlib.metadata`` (read at the first tracer, for the scope version); a caching task does."""
    plain = loaded_after("import otel_runtime\n@otel_runtime.task\ndef plain() -> None: ...")
    assert [name for name in plain if name.startswith(("hashlib", "importlib.metadata", "tempfile"))] == []
    assert "otel_runtime._engine.caching" not in plain
    cached = loaded_after(
        "import otel_runtime\nfrom otel_runtime.cache_policies import INPUTS\n"
        "@otel_runtime.task(cache_policy=INPUTS)\ndef cached() -> None: ..."
    )
    assert "otel_runtime._engine.caching" in cached and "hashlib" in cached


def test_configure_loads_the_sdk_wiring_when_first_used() -> None:
    """``otel_runtime.configure`` is there and is the SDK wiring's function, loaded on first access."""
    loaded = loaded_after("import otel_runtime\notel_runtime.configure")
    assert "otel_runtime._sdk.configure" in loaded
    assert "opentelemetry.sdk.trace" in loaded
