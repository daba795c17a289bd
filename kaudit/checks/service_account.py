"""`automount-token`: pods that get an API token mounted (pod field, else their ServiceAccount).
`default-service-account`: pods that run as their namespace's `default` ServiceAccount."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from kaudit.checks.base import Check, Hit, Target, Template
from kaudit.static_pods import PARAMS_SCHEMA_PROPERTY, is_static_pod


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


DEFAULT_ACCOUNT_PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"static-pod-paths": PARAMS_SCHEMA_PROPERTY},
}


def service_account_field(spec: Mapping[str, Any]) -> tuple[Optional[str], Optional[str]]:
    """(the account a pod runs as, the field that names it, None when it is named by omission),
    as the API server reads them: `serviceAccountName`, else the deprecated `serviceAccount` (the
    v1 conversion copies it over), else ServiceAccount admission sets `default`. A non-string is
    no account name (the API refuses it): (None, field)."""
    for field in ("serviceAccountName", "serviceAccount"):
        value = spec.get(field)
        if value is None or value == "":
            continue
        return (value, field) if isinstance(value, str) else (None, field)
    return "default", None


def _bind_default_account(params: Mapping[str, Any], target: str) -> Check:
    extra = tuple(params.get("static-pod-paths", ()))

    def check(subject: Target) -> Iterable[Hit]:
        pod = subject.pod
        assert pod is not None
        account, field = service_account_field(pod.spec)
        if account != "default":
            return ()
        # A static pod runs as no service account: admission refuses a mirror pod that names one.
        if subject.resource.kind == "Pod" and is_static_pod(subject.resource, extra, subject.lookup):
            return ()
        if field is None:
            return (Hit(pod.path + ("serviceAccountName",), {"how": "no serviceAccountName is set"}),)
        return (Hit(pod.path + (field,), {"how": f"{field} is default"}),)

    return check


TEMPLATES.append(
    Template(
        key="default-service-account",
        description="The pod runs as its namespace's default ServiceAccount (named, or by omission).",
        targets=frozenset({"pod"}),
        params_schema=DEFAULT_ACCOUNT_PARAMS,
        bind=_bind_default_account,
    )
)
