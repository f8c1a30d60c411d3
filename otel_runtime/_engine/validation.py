"""Flow parameters checked against the flow's type hints (``validate_parameters=True``), as Prefect does.

With pydantic installed (``pip install 'otel-runtime[validation]'``) each given parameter is validated
in pydantic's lax mode: ``"1"`` becomes ``1`` for an ``int``, a value that does not fit raises
:class:`ParameterTypeError` listing each problem (``"x: Input should be a valid integer, ..."``, never
the value). Defaults, ``*args`` / ``**kwargs`` and unannotated parameters pass as they are. Without
pydantic, parameters pass as they are, with one warning per flow that has type hints.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from otel_runtime._base.guard import warn_once
from otel_runtime._engine.exceptions import ParameterTypeError

__all__ = ["ParameterValidator", "parameter_validator"]

_PASSED_AS_GIVEN = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class ParameterValidator:
    """The pydantic adapters of one flow's annotated parameters."""

    __slots__ = ("adapters", "defaults", "signature")

    def __init__(self, signature: inspect.Signature, adapters: dict[str, Any]) -> None:
        self.signature = signature
        self.adapters = adapters
        self.defaults = {name: parameter.default for name, parameter in signature.parameters.items()}

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` with each given value validated (and coerced); ``ParameterTypeError`` when
        any does not fit."""
        import pydantic

        validated = dict(parameters)
        problems: list[str] = []
        for name, adapter in self.adapters.items():
            if name not in parameters or parameters[name] is self.defaults[name]:
                continue
            try:
                validated[name] = adapter.validate_python(parameters[name])
            except pydantic.ValidationError as error:
                for detail in error.errors():
                    where = ".".join(str(part) for part in (name, *detail["loc"]))
                    problems.append(f"{where}: {detail['msg']}")
        if problems:
            raise ParameterTypeError("Flow run received invalid parameters:\n - " + "\n - ".join(problems))
        return validated

    def arguments(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's ``args`` and ``kwargs`` from parameters by name (as ``bind`` gave them)."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            if name not in parameters:
                continue
            value = parameters[name]
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                args.extend(value)
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                kwargs.update(value)
            elif parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[name] = value
            else:
                args.append(value)
        return tuple(args), kwargs


def _adapter(annotation: Any) -> Any:
    import pydantic

    try:
        return pydantic.TypeAdapter(annotation, config=pydantic.ConfigDict(arbitrary_types_allowed=True))
    except pydantic.PydanticUserError:  # a model or dataclass: it has its own config
        return pydantic.TypeAdapter(annotation)


def parameter_validator(fn: Callable[..., Any], flow_name: str) -> ParameterValidator | None:
    """The validator of a flow's parameters, or ``None`` when there is nothing to validate (no type
    hints, or no pydantic: then one warning)."""
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # names that do not resolve at run time: the raw annotations, strings skipped
        hints = {
            name: p.annotation
            for name, p in signature.parameters.items()
            if not isinstance(p.annotation, str)
        }
    annotated = {
        name: hints[name]
        for name, parameter in signature.parameters.items()
        if parameter.kind not in _PASSED_AS_GIVEN
        and name in hints
        and hints[name] is not inspect.Parameter.empty
    }
    if not annotated:
        return None
    try:
        import pydantic  # noqa: F401 - on the first run of a flow with type hints, not at import
    except ImportError:
        warn_once(
            f"validate_parameters:{flow_name}",
            f"flow {flow_name!r} has type hints but pydantic is not installed: its parameters are not "
            "validated or coerced (pip install 'otel-runtime[validation]', or validate_parameters=False)",
        )
        return None
    adapters: dict[str, Any] = {}
    for name, annotation in annotated.items():
        if annotation is Any:
            continue
        try:
            adapters[name] = _adapter(annotation)
        except Exception:  # a hint pydantic cannot build a schema for: that parameter passes as given
            warn_once(
                f"validate_parameters:{flow_name}:{name}",
                f"flow {flow_name!r}: parameter {name!r} has a hint pydantic cannot check; not validated",
                exc_info=True,
            )
    return ParameterValidator(signature, adapters) if adapters else None
