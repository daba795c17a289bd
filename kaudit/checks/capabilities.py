"""`capabilities`: Linux capabilities a container must drop, and ones it must not add."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.workloads import mapping, sequence

PARAMS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "forbidden-add": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                          "description": "capabilities a container may not add (NET_RAW or CAP_NET_RAW; ALL matches any add)"},
        "required-drop": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                          "description": "capabilities securityContext.capabilities.drop must cover (ALL covers every one)"},
    },
}


def normalize(capability: Any) -> str:
    """`cap_sys_admin`, `CAP_SYS_ADMIN` and `SYS_ADMIN` are the same capability to the runtime.

    `ALL` is a keyword the runtimes match case-insensitively; `CAP_ALL` is not that keyword.
    """
    text = str(capability).strip().upper()
    return text[4:] if text.startswith("CAP_") and text != "CAP_ALL" else text


def _bind(params: Mapping[str, Any], target: str) -> Check:
    forbidden = {normalize(c) for c in params.get("forbidden-add", ())}
    required = [normalize(c) for c in params.get("required-drop", ())]

    def check(subject: Target) -> Iterable[Hit]:
        container = subject.container
        assert container is not None
        caps_path = container.path + ("securityContext", "capabilities")
        caps = mapping(container.security_context.get("capabilities"))
        hits = []
        for index, capability in enumerate(sequence(caps.get("add"))):
            name = normalize(capability)
            if name in forbidden or (name == "ALL" and forbidden):
                hits.append(Hit(caps_path + ("add", index), {"capability": name}))
        if required:
            dropped = {normalize(c) for c in sequence(caps.get("drop"))}
            missing = [] if "ALL" in dropped else [c for c in required if c not in dropped]
            if missing:
                hits.append(Hit(caps_path + ("drop",), {"missing": ", ".join(missing)}))
        return hits

    return check


TEMPLATES = [
    Template(
        key="capabilities",
        description="Capabilities in `add` must avoid `forbidden-add`; `drop` must cover `required-drop`.",
        targets=frozenset({"container"}),
        params_schema=PARAMS_SCHEMA,
        bind=_bind,
    )
]
