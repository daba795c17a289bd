"""The ClusterRoles every API server creates (its bootstrap RBAC policy), per Kubernetes minor.

Generated into kaudit/data/bootstrap-rbac.json by scripts/generate-bootstrap-rbac from a fresh
server's objects; never edited by hand. Each role has its own rules, its aggregation labels and, for
aggregating roles (admin, edit, view), its selectors and no rules: they are filled by label at scan
time like any aggregated role, so a manifest's ClusterRole labelled `aggregate-to-edit` joins `edit`.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Mapping, Optional

DATA = Path(__file__).resolve().parent.parent / "data" / "bootstrap-rbac.json"


@functools.lru_cache(maxsize=1)
def _data() -> Mapping[str, Any]:
    return json.loads(DATA.read_text())["minors"]  # type: ignore[no-any-return]


def minors() -> list[str]:
    return list(_data())


def cluster_roles(minor: Optional[str] = None) -> Mapping[str, Mapping[str, Any]]:
    """name -> {"rules", "labels", optional "aggregationRule"} of that minor's bootstrap ClusterRoles;
    the newest minor covered when none is given or the one asked for is not covered (a manifest scan
    does not know the server it will be applied to)."""
    data = _data()
    chosen = minor if minor is not None and minor in data else list(data)[-1]
    return data[chosen]["clusterRoles"]  # type: ignore[no-any-return]
