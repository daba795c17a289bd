"""The RBAC objects every API server creates (its bootstrap policy), per Kubernetes minor.

Generated into kaudit/data/bootstrap-rbac.json by scripts/generate-bootstrap-rbac from a fresh
server's objects or from upstream's golden files at a release tag; never edited by hand. Each minor
holds `clusterRoles` and `roles` (rules; aggregate-to-* labels; for aggregating roles such as admin,
edit and view, their selectors and no rules: they are filled by label at scan time like any
aggregated role, so a manifest's ClusterRole labelled `aggregate-to-edit` joins `edit`),
`clusterRoleBindings` and `roleBindings` (roleRef, subjects), keyed by name (namespace/name for the
namespaced ones), and its `source`. The file is read on first use only.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Mapping, Optional

from kaudit.paths import package_data_location

DATA = package_data_location("bootstrap-rbac.json")


@functools.lru_cache(maxsize=1)
def _data() -> Mapping[str, Any]:
    with open(DATA, encoding="utf-8") as stream:
        return json.load(stream)["minors"]  # type: ignore[no-any-return]


def minors() -> list[str]:
    """The minors shipped, oldest first."""
    return list(_data())


def _number(minor: str) -> int:
    return int(minor.split(".")[1])


def nearest(minor: str) -> str:
    """The shipped minor closest to `minor` ("1.37" -> "1.36" when 1.37 is not shipped); on a tie, the
    newer one. `minor` is "1.NN"."""
    wanted = _number(minor)
    return min(minors(), key=lambda m: (abs(_number(m) - wanted), -_number(m)))


def policy(minor: str) -> Mapping[str, Any]:
    """One shipped minor's data: source, clusterRoles, clusterRoleBindings, roles, roleBindings."""
    return _data()[minor]  # type: ignore[no-any-return]


def cluster_roles(minor: Optional[str] = None) -> Mapping[str, Mapping[str, Any]]:
    """name -> {"rules", "labels", optional "aggregationRule"} of that minor's bootstrap ClusterRoles;
    the newest minor covered when none is given or the one asked for is not covered (a manifest scan
    does not know the server it will be applied to)."""
    data = _data()
    chosen = minor if minor is not None and minor in data else list(data)[-1]
    return data[chosen]["clusterRoles"]  # type: ignore[no-any-return]
