"""`host-path`: hostPath volumes, optionally only those that expose given host paths, graded by
whether any container can write through them."""
from __future__ import annotations

import posixpath
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping, Sequence

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import Container, mapping, sequence

MAX_LISTED = 4  # exposed paths named in a message; the rest are counted

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "paths": {
            "type": "array",
            "items": {"type": "string", "pattern": "^/"},
            "description": "host paths to look for (`*` in a component matches any text in it, e.g. a uid or "
                           "`*.conf`); a volume of any of their parent directories exposes them too, and a path "
                           "ending in `/**` is exposed by a volume of anything below it as well",
        },
        "read-only-demote": {
            "type": "integer", "minimum": 0, "maximum": 4, "default": 0,
            "description": "levels below the rule's severity when no container can write through the volume "
                           "(every volumeMount of it is readOnly, or none mounts it)",
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
    `/run/user/1000` exposes `/run/user/*/docker.sock` (a `*` matches any text within one component:
    `/etc/kubernetes/*.conf`). A sensitive path ending in `/**` is a tree: a volume of anything
    inside it exposes it too (`/etc/kubernetes/pki/**`: `/etc/kubernetes/pki/etcd`)."""
    mounted = [c for c in volume_path.split("/") if c]
    wanted = [c for c in sensitive.split("/") if c]
    tree = bool(wanted) and wanted[-1] == "**"
    if tree:
        wanted = wanted[:-1]
    if len(mounted) > len(wanted) and not tree:
        return False
    return all(w == m or ("*" in w and fnmatchcase(m, w)) for m, w in zip(mounted, wanted))


def access(volume_name: Any, containers: Sequence[Container]) -> str:
    """How the pod's containers mount the volume: `writable` when any mount of it lacks
    `readOnly: true`, else `read-only`, or `not mounted` when no container mounts it. A volume
    without a name cannot be told apart from others: `writable`, as the worst case."""
    if not isinstance(volume_name, str) or not volume_name:
        return "writable"
    mounts = [m for c in containers for m in sequence(c.body.get("volumeMounts"))
              if isinstance(m, dict) and m.get("name") == volume_name]
    if not mounts:
        return "not mounted"
    return "read-only" if all(m.get("readOnly") is True for m in mounts) else "writable"


def listed(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
    return ", ".join(paths[:MAX_LISTED]) + more


def _normalize_pattern(path: str) -> str:
    if path.rstrip("/").endswith("/**"):
        return normalize(path.rstrip("/")[:-3]).rstrip("/") + "/**"
    return normalize(path)


def _bind(params: Mapping[str, Any], target: str) -> Check:
    sensitive = list(dict.fromkeys(_normalize_pattern(p) for p in params.get("paths", ())))
    demote = int(params.get("read-only-demote", 0))

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
                values["exposes"] = listed([m.removesuffix("/**") for m in dict.fromkeys(matched)])
            mode = access(mapping(volume).get("name"), subject.containers)
            values["access"] = mode
            hits.append(Hit(where, values, demote=demote if mode != "writable" else 0))
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
