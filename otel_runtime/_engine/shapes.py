"""What the engine learns once from a decorated function: its shape, its code location, how it binds."""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry.semconv.attributes.code_attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
)

__all__ = ["Shape", "code_attributes", "positional_names", "shape_of"]


class Shape(enum.Enum):
    """How a run of the function executes: a call, a coroutine, or a (sync or async) generator."""

    SYNC = enum.auto()
    ASYNC = enum.auto()
    GENERATOR = enum.auto()
    ASYNC_GENERATOR = enum.auto()


def shape_of(fn: Callable[..., Any]) -> Shape:
    """The :class:`Shape` of ``fn``."""
    if inspect.isasyncgenfunction(fn):
        return Shape.ASYNC_GENERATOR
    if inspect.iscoroutinefunction(fn):
        return Shape.ASYNC
    if inspect.isgeneratorfunction(fn):
        return Shape.GENERATOR
    return Shape.SYNC


def code_attributes(fn: Callable[..., Any]) -> dict[str, str | int]:
    """The ``code.*`` span attributes of ``fn`` (through wrappers and ``functools.partial``)."""
    target = inspect.unwrap(fn)
    while isinstance(target, functools.partial):
        target = target.func
    code = getattr(target, "__code__", None)
    qualname = getattr(target, "__qualname__", type(target).__qualname__)
    attributes: dict[str, str | int] = {
        CODE_FUNCTION_NAME: f"{getattr(target, '__module__', None) or 'builtins'}.{qualname}",
    }
    if code is not None:
        attributes[CODE_FILE_PATH] = code.co_filename
        attributes[CODE_LINE_NUMBER] = code.co_firstlineno
    return attributes


def positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names when every parameter can be given by position (no ``*args``, keyword-only
    or ``**kwargs``), else ``None``: then a call that passes them all by position binds in order."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if all(parameter.kind in positional for parameter in signature.parameters.values()):
        return tuple(signature.parameters)
    return None
