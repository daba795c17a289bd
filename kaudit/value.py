"""`@value`: kaudit's value objects, immutable to the type checker, cheap at import.

A frozen dataclass costs Python 3.11 two more generated methods (`__setattr__`, `__delattr__`, each
compiled from source when the class is created) and constructs several times slower (every field
set through `object.__setattr__`): over the package's 60-odd value classes, about a tenth of a
pre-commit run. `@value` makes a plain dataclass hashed by its fields exactly as a frozen one
is (`eq=False`: by identity), and declares it frozen to mypy (`dataclass_transform`), so an
assignment to a field is still a type error in this strictly checked package; only the runtime
check is gone. Use `@value` where STYLE.md says frozen dataclass.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator

T = TypeVar("T")


@overload
def value(cls: type[T], /) -> type[T]: ...


@overload
def value(*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def value(cls: Optional[type[T]] = None, /, *, eq: bool = True) -> Union[type[T], Callable[[type[T]], type[T]]]:
    def make(cls: type[T]) -> type[T]:
        # unsafe_hash: the field hash a frozen dataclass gets (eq=False keeps identity, as frozen does)
        return dataclasses.dataclass(eq=eq, unsafe_hash=eq)(cls)

    return make if cls is None else make(cls)
