"""Where SARIF results point: artifact URIs GitHub code scanning can place in the repository.

- A manifest file: its path relative to `SRCROOT`, the git top level that holds the scanned files
  (the one that holds the working directory, when it holds any of them), whatever directory kaudit
  runs from. Outside any repository, `SRCROOT` is the working directory. A file outside `SRCROOT` keeps
  an absolute `file:` URI (GitHub cannot place it, but it is still the truth).
- A live-cluster object: `cluster/<context>/<Kind>/<namespace or _cluster>/<name>.yaml`, line 1. No such
  file exists; GitHub still needs a physical location for every result (it rejects the whole upload
  otherwise), and one stable path per object keeps each object's alerts together across scans.
- An object read from standard input: `stdin/<Kind>/<namespace or _cluster>/<name>.yaml`, line 1, for
  the same reasons: the stream is no file in the repository.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any, Iterable
from urllib.parse import quote

from kaudit.model import STDIN_NAME, Location, ResourceRef
from kaudit.repo_root import git_top_level

SRCROOT = "SRCROOT"  # the base id; SARIF 2.1.0's examples and GitHub's upload use this name
CLUSTER_SCOPED = "_cluster"  # a namespace segment no namespace can have (names start with a letter or digit)


class ArtifactUris:
    """File names and objects as SARIF artifact locations, relative to one repository root."""

    def __init__(self, cwd: str, files: Iterable[str]) -> None:
        self.cwd = os.path.abspath(cwd)
        self.root, self.in_repository = _choose_root(self.cwd, files)
        self.cache: dict[str, dict[str, str]] = {}

    def base_ids(self) -> dict[str, dict[str, str]]:
        """`run.originalUriBaseIds`: an absolute file URI ending in '/', as SARIF 2.1.0 §3.14.14 requires."""
        uri = Path(os.path.realpath(self.root)).as_uri()
        return {SRCROOT: {"uri": uri if uri.endswith("/") else uri + "/"}}

    def file(self, file: str) -> dict[str, str]:
        known = self.cache.get(file)
        if known is None:
            known = self.cache[file] = self._file(file)
        return dict(known)

    def physical(self, location: Location, resource: ResourceRef) -> tuple[dict[str, Any], dict[str, int]]:
        """The physical location of a finding, and (for stdin) where in the stream it was."""
        if location.file is not None and location.file != STDIN_NAME:
            physical: dict[str, Any] = {"artifactLocation": self.file(location.file)}
            if location.line is not None:
                region: dict[str, Any] = {"startLine": location.line}
                if location.column is not None:
                    region["startColumn"] = location.column
                physical["region"] = region
            return physical, {}
        if location.file == STDIN_NAME:
            prefix = ["stdin"]
            stream = {"stdinLine": location.line} if location.line is not None else {}
        else:
            prefix, stream = ["cluster", location.context or location.server or ""], {}
        uri = object_uri(prefix, resource)
        return {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT}, "region": {"startLine": 1}}, stream

    def _file(self, file: str) -> dict[str, str]:
        if file == STDIN_NAME:
            return {"uri": "stdin", "uriBaseId": SRCROOT}  # an error in the stream itself, not in one object
        absolute = os.path.abspath(file)
        if self.in_repository:
            top = git_top_level(absolute)
            base = str(top) if top is not None and _same(str(top), self.root) else None
        else:
            base = self.root
        if base is not None:
            relative = os.path.relpath(absolute, base)
            if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
                return {"uri": quote(PurePath(relative).as_posix(), safe="/"), "uriBaseId": SRCROOT}
        return {"uri": Path(absolute).as_uri()}  # outside SRCROOT: nothing to resolve it against


def object_uri(prefix: list[str], resource: ResourceRef) -> str:
    segments = [*prefix, resource.kind, resource.namespace or CLUSTER_SCOPED, resource.name + ".yaml"]
    return "/".join(_segment(segment) for segment in segments)


def _segment(text: str) -> str:
    """One path segment that stays one segment: '/' and everything else outside the unreserved set is
    percent-encoded, and a segment of dots (or none) is prefixed so it cannot mean '.' or '..' (URL
    parsers read an encoded '%2e%2e' as '..' too, so encoding the dots would not do)."""
    if not text.strip("."):
        text = "_" + text
    return quote(text, safe="")


def _choose_root(cwd: str, files: Iterable[str]) -> tuple[str, bool]:
    """(root, whether it is a repository top level)."""
    cwd_top = git_top_level(cwd)
    tops: list[Path] = []
    for file in dict.fromkeys(files):
        if file == STDIN_NAME:
            continue
        top = git_top_level(file)
        if top is not None:
            tops.append(top)
    # The working directory's repository wins when it holds a scanned file (CI runs in the checkout);
    # otherwise the repository of the first file (a scan by absolute path from elsewhere, or from a
    # home directory that is itself a repository).
    if cwd_top is not None and any(_same(str(top), str(cwd_top)) for top in tops):
        return str(cwd_top), True
    if tops:
        return str(tops[0]), True
    if cwd_top is not None:
        return str(cwd_top), True
    return cwd, False


def _same(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)
