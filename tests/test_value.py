"""kaudit.value: the data classes every stage passes around, built without the dataclasses module.
They must behave as the dataclasses they replace: construction (generic at first, compiled after
COMPILE_AFTER constructions, the same either way), defaults, equality and hashing by field,
identity for eq=False, replace(), pickling (worker processes send findings back)."""
from __future__ import annotations

import pickle
from typing import Any, Callable, Optional

import pytest

from kaudit.value import COMPILE_AFTER, computed_once, field, fields, record, replace, value


@value
class Point:
    x: int
    label: str = "p"
    tags: tuple[str, ...] = field(default_factory=tuple)


@value
class Weighted(Point):
    weight: float = 1.0


@value(eq=False)
class Handle:
    name: str


@record
class Bag:
    items: list[int] = field(default_factory=list)
    note: str = field(default="", compare=False, repr=False)


class Measured:
    calls = 0

    @computed_once
    def size(self) -> int:
        Measured.calls += 1
        return 42


def _fresh_class() -> type:
    @value
    class Fresh:
        a: int
        b: str = "b"
        c: tuple[int, ...] = field(default_factory=tuple)

    return Fresh


CONSTRUCTIONS: list[tuple[tuple[Any, ...], dict[str, Any], Optional[tuple[Any, ...]]]] = [
    ((1,), {}, (1, "b", ())),
    ((1, "x"), {}, (1, "x", ())),
    ((), {"a": 2, "c": (3,)}, (2, "b", (3,))),
    ((1,), {"b": "y"}, (1, "y", ())),
    ((), {}, None),  # a missing argument
    ((1, "x", (), 4), {}, None),  # too many
    ((1,), {"a": 1}, None),  # twice
    ((1,), {"d": 1}, None),  # unknown
]


@pytest.mark.parametrize("compiled", [False, True], ids=["generic", "compiled"])
def test_both_constructors_agree_on_values_and_errors(compiled: bool) -> None:
    fresh = _fresh_class()
    if compiled:
        for _ in range(COMPILE_AFTER + 1):
            fresh(0)
    init = fresh.__dict__["__init__"]
    for args, kwargs, expected in CONSTRUCTIONS:
        if expected is None:
            with pytest.raises(TypeError):
                fresh(*args, **kwargs)
            continue
        made = fresh(*args, **kwargs)
        assert (made.a, made.b, made.c) == expected
    assert fresh.__dict__["__init__"] is init  # eight constructions compile nothing; a compiled one stays


def test_the_constructor_is_compiled_after_enough_constructions() -> None:
    fresh = _fresh_class()
    first = fresh.__dict__["__init__"]
    for _ in range(COMPILE_AFTER - 1):
        fresh(1)
    assert fresh.__dict__["__init__"] is first
    fresh(1)
    assert fresh.__dict__["__init__"] is not first
    assert fresh(5, c=(1,)).c == (1,)


def test_factories_make_a_new_default_each_time() -> None:
    first, second = Bag(), Bag()
    first.items.append(1)
    assert second.items == []


def test_values_compare_and_hash_by_their_fields() -> None:
    assert Point(1) == Point(1, "p", ()) and hash(Point(1)) == hash(Point(1, "p"))
    assert Point(1) != Point(2) and Point(1) != Point(1, "q")
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert Point(1) != Weighted(1)  # another class is never equal, as with dataclasses
    assert Point(1).__eq__("x") is NotImplemented


def test_eq_false_keeps_identity() -> None:
    one, other = Handle("a"), Handle("a")
    assert one != other and one == one
    assert len({one, other}) == 2


def test_records_compare_by_the_compared_fields_and_are_unhashable() -> None:
    assert Bag([1], note="a") == Bag([1], note="b")
    with pytest.raises(TypeError):
        hash(Bag())
    bag = Bag()
    bag.items = [2]  # a record is mutable
    assert bag.items == [2]


def test_inheritance_appends_fields_in_order() -> None:
    assert [f.name for f in fields(Weighted)] == ["x", "label", "tags", "weight"]
    heavy = Weighted(1, "w", ("t",), 2.0)
    assert (heavy.x, heavy.label, heavy.tags, heavy.weight) == (1, "w", ("t",), 2.0)
    assert Weighted(1).weight == 1.0


def test_a_default_may_not_come_before_a_field_without_one() -> None:
    with pytest.raises(TypeError, match="follows a default"):
        @value
        class Bad:
            a: int = 1
            b: str  # type: ignore[misc]


def test_repr_shows_the_shown_fields() -> None:
    assert repr(Point(1)) == "Point(x=1, label='p', tags=())"
    assert repr(Bag([1], note="secret")) == "Bag(items=[1])"


def test_replace_makes_a_copy_through_the_constructor() -> None:
    moved = replace(Point(1, tags=("a",)), x=2)
    assert moved == Point(2, tags=("a",))
    with pytest.raises(TypeError, match="no field 'nope'"):
        replace(Point(1), nope=1)
    with pytest.raises(TypeError):
        fields(object())


def test_pickling_round_trips_before_and_after_compilation() -> None:
    fresh_points: list[Callable[[], Point]] = [lambda: Point(1, "a", ("b",))]
    for make in fresh_points:
        assert pickle.loads(pickle.dumps(make())) == make()
    assert pickle.loads(pickle.dumps(Weighted(3))) == Weighted(3)


def test_computed_once_computes_once_per_instance() -> None:
    Measured.calls = 0
    measured = Measured()
    assert measured.size == 42 and measured.size == 42
    assert Measured.calls == 1
    assert Measured().size == 42 and Measured.calls == 2
    assert isinstance(Measured.__dict__["size"], computed_once)


def test_the_built_in_sha256_is_hashlib_s() -> None:
    import hashlib

    from kaudit.sha256 import sha256

    for data in (b"", b"abc", bytes(range(256)) * 100):
        assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
