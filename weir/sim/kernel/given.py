"""`Given[In, Out]`: how a type checker should see a dataclass field that its constructor normalises."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

__all__ = ["Given", "given"]

In = TypeVar("In")
Out = TypeVar("Out")


class Given(Generic[In, Out]):
    """A field's type as a type checker should see it: given to the constructor as `In` (a duration
    as 15000 or "15ms", names as any sequence), read as `Out` (whole microseconds, a tuple), because
    `_validate` normalises it on construction. Only ever an annotation: the dataclass stores the
    plain value, and this class is never instantiated (mypy reads a descriptor-typed dataclass
    field's constructor type from `__set__` and its attribute type from `__get__`)."""

    @overload
    def __get__(self, obj: None, owner: Any) -> Given[In, Out]: ...
    @overload
    def __get__(self, obj: object, owner: Any) -> Out: ...
    def __get__(self, obj: object | None, owner: Any) -> Out | Given[In, Out]:
        raise TypeError("weir.sim.kernel.given.Given is an annotation, not a descriptor")

    def __set__(self, obj: object, value: In) -> None:
        raise TypeError("weir.sim.kernel.given.Given is an annotation, not a descriptor")


def given(default: object) -> Any:
    """A Given field's default, as the type checker should take it (the value as it is given)."""
    return default
