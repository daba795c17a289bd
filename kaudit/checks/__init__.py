"""The template registry: an explicit, greppable dict of key -> Template (yamllint style)."""
from __future__ import annotations

from kaudit.checks import (
    apparmor, attack, capabilities, cluster, configmap_secrets, control_plane, env_secrets, exposure, host_path, images,
    ingress_nginx, naked_pod, network, platform, pss, rbac, rbac_hygiene, resources, root_group, sandbox, scheduling,
    schema, service_account, signatures, system_namespace,
)
from kaudit.checks.base import Template

TEMPLATES: dict[str, Template] = {
    template.key: template
    for module in (schema, apparmor, attack, capabilities, host_path, images, env_secrets, configmap_secrets,
                   service_account, sandbox, exposure, ingress_nginx, pss, network, rbac, rbac_hygiene, cluster,
                   control_plane, signatures, platform, root_group, naked_pod, system_namespace, scheduling,
                   resources)
    for template in module.TEMPLATES
}
