"""Typing ``--param key=value`` strings by the flow's signature."""

from __future__ import annotations

import contextlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final

from otel_runtime._engine.flows import Flow
from otel_runtime.cli.errors import CliError

__all__ = ["convert", "parse_parameters"]

_FALSE: Final = frozenset({"false", "0", "no", "off"})
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_ANNOTATION_NAMES: Final[Mapping[str, Any]] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
}


def _describe(annotation: Any) -> str:
    """``list[str] | None``, the same on every Python version."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_describe(option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError(f"expects {what} as JSON") from None


def convert(value: str, annotation: Any) -> Any:
    """``value`` as the type ``annotation`` names; ``ValueError`` saying what was expected.

    ``str`` stays as it is; ``int``, ``float``, ``bool`` (true/false, 1/0, yes/no, on/off), enums,
    ``datetime`` / ``date`` (ISO 8601) and ``Path`` are parsed; lists, tuples, sets and dicts are JSON;
    ``X | None`` takes ``none`` / ``null``; without an annotation JSON is tried, then the text is kept.
    """
    if isinstance(annotation, str):  # an annotation that did not resolve
        annotation = _ANNOTATION_NAMES.get(annotation.split("[")[0].strip(), Any)
    if annotation is inspect.Parameter.empty or annotation is Any:
        try:
            return json.loads(value)
        except ValueError:
            return value
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(annotation)
        if type(None) in options and value.strip().lower() in ("none", "null"):
            return None
        for option in options:
            if option is not type(None):
                with contextlib.suppress(ValueError):
                    return convert(value, option)
        raise ValueError(f"expects {_describe(annotation)}")
    if origin is typing.Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == value:
                return choice
        raise ValueError(f"expects one of {', '.join(map(str, typing.get_args(annotation)))}")
    return _convert_plain(value, origin or annotation)


def _parse_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expects true or false")


def _parse_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expects an integer") from None


def _parse_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("expects a number") from None


def _parse_list(value: str) -> list[Any]:
    parsed = _json(value, "a list")
    if not isinstance(parsed, list):
        raise ValueError("expects a JSON list")  # noqa: TRY004 - bad text typed by the user, not a bug
    return parsed


def _parse_dict(value: str) -> dict[str, Any]:
    parsed = _json(value, "an object")
    if not isinstance(parsed, dict):
        raise ValueError("expects a JSON object")  # noqa: TRY004 - bad text typed by the user, not a bug
    return parsed


def _parse_iso(kind: type[date]) -> Callable[[str], date]:
    def parse(value: str) -> date:
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise ValueError("expects an ISO 8601 date") from None

    return parse


_PARSERS: Final[Mapping[Any, Callable[[str], Any]]] = {
    str: str,
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    list: _parse_list,
    Sequence: _parse_list,
    tuple: lambda value: tuple(_parse_list(value)),
    set: lambda value: set(_parse_list(value)),
    frozenset: lambda value: frozenset(_parse_list(value)),
    dict: _parse_dict,
    Mapping: _parse_dict,
    datetime: _parse_iso(datetime),
    date: _parse_iso(date),
    Path: Path,
}


def _convert_plain(value: str, kind: Any) -> Any:
    parse = _PARSERS.get(kind)
    if parse is not None:
        return parse(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        for member in kind:
            if value in (str(member.value), member.name):
                return member
        raise ValueError(f"expects one of {', '.join(str(member.value) for member in kind)}")
    return value  # a type we cannot parse from text: the function gets the text


def parse_parameters(flow: Flow[..., Any], raw: Sequence[str]) -> dict[str, Any]:
    """``--param key=value`` items as the flow's keyword arguments, typed by its annotations."""
    signature = inspect.signature(flow.fn)
    try:
        hints = typing.get_type_hints(flow.fn)
    except Exception:  # an annotation that does not resolve: fall back to the raw ones
        hints = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    named = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    parameters: dict[str, Any] = {}
    for item in raw:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise CliError(f"malformed --param {item!r}: expected key=value")
        parameter = named.get(key)
        if parameter is None and not takes_any:
            known = ", ".join(named) or "none"
            raise CliError(f"flow {flow.name!r} has no parameter {key!r}; its parameters: {known}")
        annotation = hints.get(key, parameter.annotation) if parameter is not None else Any
        try:
            parameters[key] = convert(value, annotation)
        except ValueError as error:
            raise CliError(f"--param {key}={value!r}: {key} {error}") from None
    missing = [
        name
        for name, parameter in named.items()
        if parameter.default is inspect.Parameter.empty and name not in parameters
    ]
    if missing:
        raise CliError(f"flow {flow.name!r} needs {' '.join(f'--param {name}=...' for name in missing)}")
    return parameters
