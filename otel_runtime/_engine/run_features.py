"""What flows and tasks offer beyond a plain call, as Prefect's do.

- ``return_state=True`` and ``wait_for=[...]`` on a call (the call takes the :class:`Control` path;
  a plain call never does);
- upstream futures and states in the arguments, waited for and replaced by their results, and the
  ``NotReady`` run (a span, linked to the upstream) when one did not complete;
- ``with_options(...)``: a copy with some options changed;
- decorating methods, static methods and class methods (the descriptor protocol);
- ``description``, and the hook lists (``hooks.HookLists``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from otel_runtime._core.models import new_run_id
from otel_runtime._engine import made
from otel_runtime._engine.hooks import HookLists
from otel_runtime._engine.resolution import BlockedBy, has_upstreams, resolve_inputs, wait_for_upstreams
from otel_runtime._engine.run_states import Control, block, final_state
from otel_runtime._engine.shapes import Shape, positional_names

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope

__all__ = ["CONTROL_KEYWORDS", "RunFeatures", "has_upstream_arguments", "needs_control", "unwrap_method"]

CONTROL_KEYWORDS: Final = ("return_state", "wait_for")
"""Keywords a call of a flow or task takes for the engine, never passed to the function."""


_OPTION_ATTRIBUTES: Final = {"validate_parameters": "should_validate_parameters"}
"""Decorator keywords kept under another attribute name (Prefect's: ``validate_parameters`` is a method)."""


def needs_control(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call uses a state feature: ``return_state`` / ``wait_for``, or upstreams to resolve."""
    if kwargs and ("return_state" in kwargs or "wait_for" in kwargs):
        return True
    return made.anything and has_upstream_arguments(args, kwargs)


def has_upstream_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call passes an upstream future or state (or an annotation) to resolve first."""
    # A loop, not any() over generators: a call with one or two arguments pays half as much.
    for value in (*args, *kwargs.values()) if kwargs else args:  # noqa: SIM110 - see above
        if has_upstreams(value):
            return True
    return False


def unwrap_method(fn: Any) -> tuple[Any, str | None]:
    """``fn`` without a ``staticmethod`` / ``classmethod`` wrapper, and which one it had."""
    if isinstance(fn, staticmethod):
        return fn.__func__, "static"
    if isinstance(fn, classmethod):
        return fn.__func__, "class"
    return fn, None


class RunFeatures(HookLists):
    """Mixed into ``Runnable``: the call path for state features, ``with_options``, methods."""

    _method_kind: str | None = None
    _settle_always: ClassVar[bool] = False

    # Provided by Runnable.
    fn: Callable[..., Any]
    _signature: inspect.Signature
    _positional_names: tuple[str, ...] | None
    _shape: Any

    def _init_features(self, description: str | None, hooks: dict[str, Any]) -> None:
        self.description = description if description is not None else inspect.getdoc(self.fn)
        self._init_hooks(hooks)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """Bind a flow or task defined in a class body: a copy whose function has ``self`` (or the
        class, for a class method) filled in. A static method, or access on the class, is itself."""
        if self._method_kind == "static":
            return self
        target = owner if self._method_kind == "class" else instance
        if target is None:
            return self
        bound = object.__new__(type(self))  # not copy.copy: a task pickles (and copies) by reference
        bound.__dict__.update(self.__dict__)
        bound.fn = functools.partial(self.fn, target)
        bound._signature = inspect.signature(bound.fn)
        bound._positional_names = positional_names(bound._signature)
        return bound

    def with_options(self, **options: Any) -> Any:
        """A copy of this flow or task with the given options changed (the decorator's keywords)."""
        current: dict[str, Any] = {}
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "fn"):
                continue
            attribute = f"{name}_hooks" if name.startswith("on_") else _OPTION_ATTRIBUTES.get(name, name)
            if hasattr(self, attribute):
                value = getattr(self, attribute)
                current[name] = list(value) if isinstance(value, list) else value
        unknown = set(options) - set(current)
        if unknown:
            raise TypeError(f"with_options() got unexpected options: {', '.join(sorted(unknown))}")
        return type(self)(self.fn, **{**current, **options})  # type: ignore[call-arg]

    # The call path of a run that uses a state feature.
    def _call_controlled(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        kwargs = dict(kwargs)
        return_state = bool(kwargs.pop("return_state", False))
        wait_for = kwargs.pop("wait_for", None)
        control = Control(return_state)
        run_id = new_run_id()
        if self._shape is Shape.ASYNC:
            return self._call_controlled_async(args, kwargs, wait_for, control, run_id)
        try:
            args, kwargs = self._resolve(args, kwargs, wait_for, control)
        except BlockedBy as blocked:
            state = self._run_blocked(args, kwargs, run_id, blocked, control)
            return state if return_state else None
        if self._shape is not Shape.SYNC:
            return cast(Any, self)(*args, **kwargs)  # generators: no state features
        try:
            result = self._run_sync(args, kwargs, run_id, control)  # type: ignore[attr-defined]
        except Exception:
            if return_state and control.state is not None:
                return control.state
            raise
        return control.state if return_state else result

    async def _call_controlled_async(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any, control: Control, run_id: str
    ) -> Any:
        try:
            args, kwargs = self._resolve(args, kwargs, wait_for, control)
        except BlockedBy as blocked:
            state = self._run_blocked(args, kwargs, run_id, blocked, control)
            return state if control.return_state else None
        try:
            result = await self._run_async(args, kwargs, run_id, control)  # type: ignore[attr-defined]
        except Exception:
            if control.return_state and control.state is not None:
                return control.state
            raise
        return control.state if control.return_state else result

    @staticmethod
    def _resolve(
        args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any, control: Control
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Wait for ``wait_for`` and the upstreams in the arguments; the arguments with their results."""
        if wait_for:
            control.upstreams = wait_for_upstreams(wait_for)
        if has_upstream_arguments(args, kwargs):
            args = tuple(resolve_inputs(value) for value in args)
            kwargs = {key: resolve_inputs(value) for key, value in kwargs.items()}
        return args, kwargs

    def _run_crashed(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], run_id: str, crash: Exception
    ) -> None:
        """A run whose worker died (``BrokenProcessPool``, Dask's ``KilledWorker``): its one span, recorded
        here in the submitting process, ``CRASHED`` with the death as its exception."""
        scope: RunScope | None = self._start(args, kwargs, run_id, None, running=False)  # type: ignore[attr-defined]
        if scope is None:
            return
        try:
            scope.fail(crash)
        finally:
            scope.close(crash)

    def _run_blocked(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], run_id: str, blocked: BlockedBy, control: Control
    ) -> Any:
        """A run that does not start (an upstream did not complete): its span, ``NotReady``."""
        scope: RunScope | None = self._start(  # type: ignore[attr-defined]
            args, kwargs, run_id, control, running=False
        )
        if scope is None:
            return None
        try:
            block(scope, blocked)
        finally:
            scope.close(None)
        return control.state if control.state is not None else final_state(scope, None)
