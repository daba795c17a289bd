"""`automount-token`: pods that get an API token mounted (pod field, else their ServiceAccount)."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from kaudit.checks.base import Check, Hit, Target, Template


def _bind(params: Mapping[str, Any], target: str) -> Check:
    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None
        spec = pod.spec
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        values = {"serviceAccount": str(account)}
        setting = spec.get("automountServiceAccountToken")
        where = pod.path + ("automountServiceAccountToken",)
        if setting is False:
            return ()
        if setting is None and subject.lookup is not None:
            # The pod field wins when set; otherwise the ServiceAccount's own setting applies.
            sa = subject.lookup.get("ServiceAccount", subject.lookup.scope(subject.resource), str(account))
            if sa is not None and sa.body.get("automountServiceAccountToken") is False:
                return ()
        return (Hit(where, values),)

    return check


TEMPLATES = [
    Template(
        key="automount-token",
        description="The pod (or its ServiceAccount) leaves the API token automounted.",
        targets=frozenset({"pod"}),
        params_schema={"type": "object", "additionalProperties": False},
        bind=_bind,
        reads=frozenset({"ServiceAccount"}),
    )
]
