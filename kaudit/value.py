"""`@value` and `@record`: kaudit's data classes, without the `dataclasses` module's start-up cost.

The standard `@dataclass` writes each class's `__init__`, `__repr__`, `__eq__` and `__hash__` as
source and compiles it when the class is created, and importing it loads `inspect`. Over kaudit's
~90 data classes that was a quarter of a pre-commit run, for classes most runs never construct.
Here a class is read once (its annotated fields, in order, with their defaults); `__eq__`,
`__hash__` and `__repr__` are shared functions over the fields, and `__init__`, the one method
whose speed matters (a big scan makes hundreds of thousands of findings), starts generic and is
compiled, as fast as the dataclass one, once a class has been constructed a few dozen times.

- `@value`: an immutable value, hashed and compared by its fields (`eq=False`: by identity). It is
  frozen to the type checker (`dataclass_transform`), so assigning a field is a type error in this
  strictly checked package; only the run-time check is gone. STYLE.md's "frozen dataclass".
- `@record`: a mutable class compared by its fields and unhashable (a plain `@dataclass`).
- `field(default=..., default_factory=..., compare=..., repr=...)`, `replace(obj, **changes)` and
  `fields(cls)` as in `dataclasses`; `@computed_once`, `functools.cached_property` without its lock. Not supported: `__post_init__`, `init=False`, keyword-only or
  ordered classes, `ClassVar` other than by that name; none is used.
"""
from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar, Union, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator

T = TypeVar("T")
_FIELDS = "__kaudit_fields__"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field: its name, default or default factory, and whether it is compared and shown."""

    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING, compare: bool = True,
                 repr: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("a field takes a default or a default_factory, not both")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


@overload
def field(*, default: T, compare: bool = True, repr: bool = True) -> T: ...


@overload
def field(*, default_factory: Callable[[], T], compare: bool = True, repr: bool = True) -> T: ...


@overload
def field(*, compare: bool = True, repr: bool = True) -> Any: ...


def field(*, default: Any = MISSING, default_factory: Any = MISSING, compare: bool = True, repr: bool = True) -> Any:
    return Field(default, default_factory, compare, repr)


def fields(cls_or_instance: Any) -> tuple[Field, ...]:
    """The fields of a `@value`/`@record` class (or instance), in `__init__` order."""
    found: Optional[tuple[Field, ...]] = getattr(cls_or_instance, _FIELDS, None)
    if found is None:
        raise TypeError(f"{cls_or_instance!r} is not a kaudit value or record")
    return found


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes`, made through `__init__` as `dataclasses.replace` does."""
    arguments = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if len(arguments) != len(arguments.keys() | changes.keys()):
        unknown = sorted(changes.keys() - arguments.keys())
        raise TypeError(f"{type(obj).__name__} has no field {unknown[0]!r}")
    arguments.update(changes)
    return type(obj)(**arguments)


@overload
def value(cls: type[T], /) -> type[T]: ...


@overload
def value(*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def value(cls: Optional[type[T]] = None, /, *, eq: bool = True) -> Union[type[T], Callable[[type[T]], type[T]]]:
    def make(cls: type[T]) -> type[T]:
        return _build(cls, eq=eq, hashable=eq)

    return make if cls is None else make(cls)


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: Optional[type[T]] = None, /, *, eq: bool = True) -> Union[type[T], Callable[[type[T]], type[T]]]:
    def make(cls: type[T]) -> type[T]:
        return _build(cls, eq=eq, hashable=False)

    return make if cls is None else make(cls)


def _build(cls: type[T], *, eq: bool, hashable: bool) -> type[T]:
    own = _own_fields(cls)
    inherited: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get(_FIELDS, ()):
            inherited[f.name] = f
    merged = {**inherited, **{f.name: f for f in own}}
    all_fields = tuple(merged.values())
    seen_default = False
    for f in all_fields:
        has_default = f.default is not MISSING or f.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"{cls.__name__}: non-default field {f.name!r} follows a default one")
        seen_default = seen_default or has_default
    setattr(cls, _FIELDS, all_fields)
    setattr(cls, "__init__", _lazy_init(cls))
    setattr(cls, "__repr__", _repr_function(tuple(f.name for f in all_fields if f.repr)))
    if eq:
        key = _key_function(tuple(f.name for f in all_fields if f.compare))
        setattr(cls, "__eq__", _eq_function(key))
        setattr(cls, "__hash__", _hash_function(key) if hashable else None)
    return cls


def _own_fields(cls: type) -> list[Field]:
    """The class's own annotated fields, in order; their class attributes become plain defaults."""
    result = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        declared = cls.__dict__.get(name, MISSING)
        f = declared if isinstance(declared, Field) else Field(default=declared)
        f.name = name
        if f.default is MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, f.default)
        result.append(f)
    return result


def _key_function(names: tuple[str, ...]) -> Callable[[Any], Any]:
    return attrgetter(*names) if names else (lambda _: ())


def _eq_function(key: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    return __eq__


def _hash_function(key: Callable[[Any], Any]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(key(self))

    return __hash__


def _repr_function(names: tuple[str, ...]) -> Callable[[Any], str]:
    def __repr__(self: Any) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"

    return __repr__


COMPILE_AFTER = 32  # constructions with the generic __init__ before a class gets a compiled one


def _lazy_init(cls: type) -> Callable[..., None]:
    """A generic `__init__` that hands over to a compiled one once the class is used in earnest:
    compiling costs ~0.1 ms a class, more than a pre-commit run spends constructing most of them,
    and a large scan constructs findings by the hundred thousand."""
    all_fields = fields(cls)
    by_name = {f.name: f for f in all_fields}
    remaining = [COMPILE_AFTER]

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        remaining[0] -= 1
        if remaining[0] <= 0 and cls.__dict__.get("__init__") is __init__:
            setattr(cls, "__init__", _compiled_init(cls))
        if len(args) > len(all_fields):
            raise TypeError(f"{cls.__name__}() takes {len(all_fields)} arguments but {len(args)} were given")
        for name in kwargs:
            if name not in by_name:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
        for f, given in zip(all_fields, args):
            if f.name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {f.name!r}")
            self.__dict__[f.name] = given
        for f in all_fields[len(args):]:
            if f.name in kwargs:
                self.__dict__[f.name] = kwargs[f.name]
            elif f.default_factory is not MISSING:
                self.__dict__[f.name] = f.default_factory()
            elif f.default is not MISSING:
                self.__dict__[f.name] = f.default
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {f.name!r}")

    return __init__


def _compiled_init(cls: type) -> Callable[..., None]:
    namespace: dict[str, Any] = {"MISSING": MISSING}
    parameters, body = ["self"], []
    for f in fields(cls):
        if f.default_factory is not MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            parameters.append(f"{f.name}=MISSING")
            body.append(f"self.{f.name} = _factory_{f.name}() if {f.name} is MISSING else {f.name}")
            continue
        if f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
        else:
            parameters.append(f.name)
        body.append(f"self.{f.name} = {f.name}")
    source = f"def __init__({', '.join(parameters)}):\n    " + ("\n    ".join(body) or "pass") + "\n"
    exec(compile(source, f"<kaudit.value {cls.__qualname__}>", "exec"), namespace)  # fields are Python names
    function: Callable[..., None] = namespace["__init__"]
    function.__qualname__ = f"{cls.__qualname__}.__init__"
    return function


class computed_once(Generic[T]):
    """A property computed on first access and kept in the instance (then read as a plain
    attribute): `functools.cached_property` without the lock Python 3.11 takes on every first
    access, a third of the time of reading a finding's fingerprint on a large scan. Instances are
    never shared between threads while being built (a scan is one thread per process)."""

    def __init__(self, function: Callable[[Any], T]) -> None:
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: Optional[type] = None) -> "computed_once[T]": ...

    @overload
    def __get__(self, instance: object, owner: Optional[type] = None) -> T: ...

    def __get__(self, instance: Optional[object], owner: Optional[type] = None) -> Union[T, "computed_once[T]"]:
        if instance is None:
            return self
        result = instance.__dict__[self.name] = self.function(instance)
        return result
