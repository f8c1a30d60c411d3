"""Argument annotations, as Prefect's: ``unmapped``, ``allow_failure`` and ``quote``.

- ``unmapped(value)``: ``task.map`` passes ``value`` whole to every task run instead of mapping over it;
- ``allow_failure(future)``: the downstream run starts even if this upstream failed, and receives the
  upstream's exception as the value;
- ``quote(value)``: the engine does not look inside ``value`` for futures or states (cheaper for a big
  collection) and passes it unchanged.

Each is a one-element tuple, as in Prefect, so tools that unpack tuples still see the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from otel_runtime._engine import made

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BaseAnnotation", "allow_failure", "quote", "unmapped"]

T = TypeVar("T")


class BaseAnnotation(tuple[T], Generic[T]):
    """A value wrapped to tell the engine how to treat it; ``unwrap()`` gives it back."""

    __slots__ = ()

    def __new__(cls, value: T) -> Self:
        if not made.anything:
            made.note()
        return super().__new__(cls, (value,))

    @property
    def value(self) -> T:
        """The wrapped value."""
        return tuple.__getitem__(self, 0)

    def unwrap(self) -> T:
        """The wrapped value."""
        return tuple.__getitem__(self, 0)

    def rewrap(self, value: T) -> Self:
        """The same annotation around another value."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.unwrap()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.unwrap(),))


class unmapped(BaseAnnotation[T]):  # noqa: N801 - Prefect's names, which users know
    """Wrap an iterable argument of ``task.map`` to pass it whole to every task run."""

    __slots__ = ()

    def __getitem__(self, _: object) -> T:  # type: ignore[override]
        return self.unwrap()  # acts as an endless sequence of the same value


class allow_failure(BaseAnnotation[T]):  # noqa: N801
    """Wrap an upstream future or state: the downstream run starts even if it failed, and receives the
    upstream's exception in its place."""

    __slots__ = ()


class quote(BaseAnnotation[T]):  # noqa: N801
    """Wrap an argument so the engine passes it as it is, without looking inside it for futures."""

    __slots__ = ()

    def unquote(self) -> T:
        """The wrapped value."""
        return self.unwrap()


for _cls in (BaseAnnotation, unmapped, allow_failure, quote):
    _cls.__module__ = "otel_runtime"
del _cls
