"""`host-path`: hostPath volumes, optionally only those that expose given host paths."""
from __future__ import annotations

import posixpath
from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "paths": {
            "type": "array",
            "items": {"type": "string", "pattern": "^/"},
            "description": "host paths to look for (`*` stands for one path component, e.g. a uid); a volume "
                           "of any of their parent directories exposes them too",
        },
    },
}


def normalize(path: str) -> str:
    """Absolute, without `..`, `.` or doubled slashes; `/var/run` is a symlink to `/run` on every
    mainstream distribution, so both spellings compare as `/run`."""
    clean = posixpath.normpath("/" + path.strip().lstrip("/"))
    if clean == "/var/run" or clean.startswith("/var/run/"):
        clean = clean[len("/var"):]
    return clean


def exposes(volume_path: str, sensitive: str) -> bool:
    """Mounting a path exposes everything below it: `/var/run` exposes `/var/run/docker.sock`, and
    `/run/user/1000` exposes `/run/user/*/docker.sock` (a `*` component matches any one component)."""
    mounted = [c for c in volume_path.split("/") if c]
    wanted = [c for c in sensitive.split("/") if c]
    if len(mounted) > len(wanted):
        return False
    return all(w == "*" or w == m for m, w in zip(mounted, wanted))


def _bind(params: Mapping[str, Any], target: str) -> Check:
    sensitive = list(dict.fromkeys(normalize(p) for p in params.get("paths", ())))

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None
        hits = []
        for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
            if mapping(volume).get("hostPath") is None:  # `hostPath: null` is no hostPath (as for the API)
                continue
            host_path = mapping(mapping(volume).get("hostPath"))
            raw = host_path.get("path")
            path = normalize(raw) if isinstance(raw, str) else "?"
            matched = [s for s in sensitive if exposes(path, s)]
            shown = raw if isinstance(raw, str) else "?"
            if sensitive and not matched:
                continue
            where = pod.path + ("volumes", index, "hostPath", "path")
            values = {"volume": str(mapping(volume).get("name", index)), "path": shown}
            if matched:
                values["exposes"] = ", ".join(dict.fromkeys(matched))
            hits.append(Hit(where, values))
        return hits

    return check


TEMPLATES = [
    Template(
        key="host-path",
        description="hostPath volumes (all of them, or those exposing the listed host paths).",
        targets=frozenset({"pod"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
