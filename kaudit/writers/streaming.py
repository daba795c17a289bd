"""A JSON document written piece by piece: one of its lists (a report's findings, a SARIF run's results)
is encoded and written one item at a time, so neither the whole document as Python objects nor its
whole text exists at once. The output is byte for byte what `json.dumps(document, indent=indent,
ensure_ascii=False)` makes of the whole document.

The caller puts `Streamed.placeholder` where the list goes.
- Compact output: the document around the list is encoded once by the C encoder and cut at the
  placeholder (a one-element list holding a fresh random token, which no report text can contain);
  each item is encoded by the C encoder and written between the two halves.
- Indented output: the json module's indenting encoder is pure Python, and each call builds a set of
  closures that refer to each other: garbage only the cycle collector frees, which `kaudit scan` turns
  off (a 78,000-finding report left 190 MiB of it). So the whole document goes through one
  `iterencode`, the placeholder yielding the items as it reaches them.
"""
from __future__ import annotations

import itertools
import json
import os
from typing import Any, Iterable, Iterator, Optional, TextIO

_END = object()
_CHUNKS = 4096  # pieces of indented output joined per write


class _Placeholder(list):  # type: ignore[type-arg]
    """Holds the token (for the C encoder, which reads a list's own items); yields the streamed items
    to the pure-Python encoder, which iterates it, once `items` is set."""

    def __init__(self, token: str) -> None:
        super().__init__([token])
        self.items: Optional[Iterator[Any]] = None

    def __iter__(self) -> Iterator[Any]:
        return self.items if self.items is not None else super().__iter__()


class Streamed:
    """The list written item by item: an iterable of JSON-ready values, each built only when written."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.items = items
        self.token = f"kaudit-streamed-{os.urandom(16).hex()}"  # not `secrets`: it imports hashlib
        self.placeholder = _Placeholder(self.token)


def write_document(stream: TextIO, document: Any, streamed: Streamed, indent: Optional[int] = None,
                   item_separator: Optional[str] = None) -> None:
    """Write `document` (holding `streamed.placeholder` once) as `json.dumps(document, indent=indent,
    ensure_ascii=False)` would, the placeholder replaced by the streamed items. `item_separator`
    replaces ", " between the streamed items of compact output."""
    items = iter(streamed.items)
    first = next(items, _END)
    placeholder = streamed.placeholder
    if first is _END:
        placeholder.clear()  # an empty list encodes as "[]" either way
    encoder = json.JSONEncoder(ensure_ascii=False, indent=indent)
    if indent is not None:
        if first is not _END:
            placeholder.items = itertools.chain((first,), items)
        chunks = encoder.iterencode(document)
        while True:
            batch = list(itertools.islice(chunks, _CHUNKS))
            if not batch:
                return
            stream.write("".join(batch))
    text = encoder.encode(document)
    if first is _END:
        stream.write(text)
        return
    cut = text.index(json.dumps(streamed.token))
    head, tail = text[:cut], text[cut + len(streamed.token) + 2:]
    del text
    separator = ", " if item_separator is None else item_separator
    encode = encoder.encode  # one encoder for every item: json.dumps with an option builds one per call
    stream.write(head)
    stream.write(encode(first))
    for item in items:
        stream.write(separator)
        stream.write(encode(item))
    stream.write(tail)
