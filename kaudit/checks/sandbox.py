"""`sandbox-runtime`: untrusted workloads must run under a sandboxed RuntimeClass (gVisor, Kata)."""
from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "runtime-classes": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "description": "RuntimeClass names that sandbox the workload (e.g. gvisor, kata)",
        },
        "untrusted-namespaces": {
            "type": "array", "items": {"type": "string", "minLength": 1},
            "description": "namespaces (globs) whose workloads are untrusted, e.g. tenant-*",
        },
        "untrusted-labels": {
            "type": "array",
            "items": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
            "description": "label sets; a workload (or its pod template) carrying all labels of one set is untrusted",
        },
    },
}


def _bind(params: Mapping[str, Any], target: str) -> Check:
    sandboxes = set(params.get("runtime-classes", ()))
    namespaces = list(params.get("untrusted-namespaces", ()))
    label_sets = [dict(s) for s in params.get("untrusted-labels", ())]
    configured = bool(sandboxes) and bool(namespaces or label_sets)

    def untrusted(subject: Target) -> str | None:
        namespace = subject.resource.namespace or ""
        for pattern in namespaces:
            if fnmatch.fnmatchcase(namespace, pattern):
                return f"namespace {namespace}" + ("" if pattern == namespace else f" matches {pattern}")
        pod = subject.pod
        assert pod is not None
        labels = {**mapping(mapping(subject.body.get("metadata")).get("labels")), **mapping(pod.metadata.get("labels"))}
        for wanted in label_sets:
            if all(labels.get(k) == v for k, v in wanted.items()):
                return "labels " + ", ".join(f"{k}={v}" for k, v in wanted.items())
        return None

    def check(subject: Target) -> Iterable[Hit]:
        if not configured:
            return ()  # nothing says what is untrusted or what a sandbox is: no basis for a finding
        pod = subject.pod
        assert pod is not None
        runtime = pod.spec.get("runtimeClassName")
        if isinstance(runtime, str) and runtime in sandboxes:
            return ()
        why = untrusted(subject)
        if why is None:
            return ()
        return (Hit(pod.path + ("runtimeClassName",),
                    {"why": why, "runtime": str(runtime) if runtime else "the default runtime",
                     "sandboxes": ", ".join(sorted(sandboxes))}),)

    return check


TEMPLATES = [
    Template("sandbox-runtime", "Untrusted workloads (by namespace or labels) without a sandboxed runtimeClassName.",
             frozenset({"pod"}), PARAMS_SCHEMA, _bind)
]
