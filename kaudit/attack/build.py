"""The attack graph of one inventory, from the facts kaudit's analyzers already know.

Nodes and edges (kaudit/attack/model.py EDGE_VERBS), each edge with the field that makes it true:

- entry points: Services of type LoadBalancer or NodePort or with externalIPs; Ingresses and
  Gateway API routes (-> the Services they send to); pods with hostNetwork or a hostPort;
- Service -> workload: its selector matches the pod template's labels in the Service's namespace,
  and a named targetPort is a port the pod declares (a pod without it is no endpoint);
- workload -> node-of:workload: a container escape (kaudit/attack/escape.py);
- node-of:W -> every workload whose pods can share a node with W's (kaudit/attack/scheduling.py):
  from the node, its pods' tokens are on disk. DaemonSets are on every node they tolerate;
- workload -> ServiceAccount: its token is in the pod (automounted, a projected token for the API
  server, or a mounted token Secret); static pods get none;
- ServiceAccount (or a group it is in) -> the role a binding grants it, in the binding's scope;
- role -> rule -> what the rule reaches: exec into pods, create pods as any ServiceAccount of the
  namespace (and, where Pod Security does not enforce baseline, a privileged pod on any node),
  tokens of ServiceAccounts, token Secrets, impersonation, and the crown jewels (CROWNS);
- node-of:W -> the kubelet's credential, only when the scan shows NodeRestriction switched off.

Everything is judged by what the API server does, never by names: a RoleBinding grants only
namespaced resources in its namespace; bootstrap ClusterRoles are known without being in the scan.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from kaudit.analyzers.permissions import CLUSTER_SCOPED, describe_rule
from kaudit.analyzers.rbac import Grant, RbacIndex, Subject, indexed_binding_subjects, rbac_index
from kaudit.attack.escape import escape_routes
from kaudit.attack.grants import Capability, binds_cluster_admin, capabilities
from kaudit.attack.model import ANY_NODE, AttackGraph, Edge, Evidence, GraphNode, crown_id
from kaudit.attack.scheduling import Constraints, shared_nodes
from kaudit.inventory import CLUSTER, Scope
from kaudit.model import FieldPath, Resource
from kaudit.sha256 import sha256
from kaudit.selectors import labels_of
from kaudit.static_pods import is_static_pod
from kaudit.workloads import Container, PodSpec, containers, mapping, pod_specs, sequence

SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
ROUTE_KINDS = ("HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute")
ENFORCING = ("baseline", "restricted")  # Pod Security levels that refuse privileged and host-path pods


def scope_text(scope: Scope) -> str:
    if scope.namespace is not None:
        return scope.namespace
    return "?" if scope.group is None else f"?{scope.group.rsplit('/', 1)[-1]}"


def account_id(scope: Scope, name: str) -> str:
    return f"ServiceAccount/{scope_text(scope)}/{name}"


class _Builder:
    def __init__(self, lookup: Any) -> None:
        self.lookup = lookup
        self.nodes: dict[str, GraphNode] = {}
        self.edges: list[Edge] = []
        self.seen_edges: set[tuple[str, str, str, int]] = set()
        self.assumptions: list[str] = []
        self.index: RbacIndex = rbac_index(lookup)
        self.workloads: list[tuple[Resource, PodSpec]] = []
        self.by_scope: dict[Scope, list[tuple[Resource, PodSpec]]] = {}
        self.listed: dict[int, list[Container]] = {}  # each pod spec's containers, found once
        self.labelled: dict[tuple[Scope, str, str], list[tuple[Resource, PodSpec, Mapping[str, str]]]] = {}
        self.accounts: dict[Scope, dict[str, Optional[Resource]]] = {}  # ServiceAccounts known per scope
        self.token_secrets: dict[Scope, list[Resource]] = {}
        self.roles_done: set[str] = set()
        self.pool_ids: list[str] = []
        # every kube-apiserver command line in the scan (static pods, kubeadm configuration): a
        # setting counts when any of them has it (the attacker picks the weakest control plane)
        self.apiservers = _apiservers(lookup)
        self.any_node_used = False  # a rule lets pods be created where Pod Security allows privileged ones

    # --- nodes and edges -----------------------------------------------------------------------

    def node(self, node_id: str, kind: str, label: str, resource: Optional[Resource] = None,
             hidden: bool = False) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = GraphNode(node_id, kind, label, resource.ref if resource is not None else None,
                                            hidden=hidden)
        return node_id

    def edge(self, kind: str, source: str, target: str, evidence: Iterable[Evidence], why: str = "",
             fix: str = "") -> None:
        found = tuple(evidence)
        key = (kind, source, target, id(found[0].resource) if found else 0)
        if key in self.seen_edges:
            return
        self.seen_edges.add(key)
        self.edges.append(Edge(kind, source, target, found, why, fix))

    def containers_of(self, pod: PodSpec) -> list[Container]:
        found = self.listed.get(id(pod))
        if found is None:
            found = self.listed[id(pod)] = containers(pod)
        return found

    def workload_node(self, resource: Resource) -> str:
        return self.node(resource.ref.describe(), "workload", resource.ref.describe(), resource)

    def account_node(self, scope: Scope, name: str) -> str:
        node_id = account_id(scope, name)
        return self.node(node_id, "service-account", node_id)

    def crown(self, key: str) -> str:
        return self.node(crown_id(key), "crown", key)

    # --- the build -----------------------------------------------------------------------------

    def build(self) -> AttackGraph:
        self.collect()
        self.entries()
        tokens = self.tokens()
        self.secrets()
        self.rbac()
        self.escapes(tokens)
        self.kubelet()
        return AttackGraph(self.nodes, self.edges, tuple(self.assumptions))

    def collect(self) -> None:
        lookup = self.lookup
        for resource in lookup.resources:
            if resource.kind in ("PodTemplate",):
                continue
            pods = [pod for pod in pod_specs(resource.body) if pod.pod_level]
            if not pods:
                continue
            scope = lookup.scope(resource)
            self.workloads.append((resource, pods[0]))
            self.by_scope.setdefault(scope, []).append((resource, pods[0]))
            labels = labels_of(pods[0].metadata)
            for key, value in labels.items():  # Services find their pods by any one of their labels
                self.labelled.setdefault((scope, key, value), []).append((resource, pods[0], labels))
        for account in lookup.of_kind("ServiceAccount"):
            self.accounts.setdefault(lookup.scope(account), {})[account.name] = account
        for resource, pod in self.workloads:
            self.accounts.setdefault(lookup.scope(resource), {}).setdefault(_account_name(pod), None)
        for namespace in lookup.namespaces():
            self.accounts.setdefault(Scope(namespace), {}).setdefault("default", None)
        for secret in lookup.of_kind("Secret"):
            if secret.body.get("type") == SERVICE_ACCOUNT_TOKEN and _secret_account(secret):
                self.token_secrets.setdefault(lookup.scope(secret), []).append(secret)

    # entry points ------------------------------------------------------------------------------

    def entries(self) -> None:
        lookup = self.lookup
        for service in lookup.of_kind("Service"):
            spec = mapping(service.body.get("spec"))
            why, path = _service_exposure(spec)
            if why:
                self.entry(service, path, why)
            self.service_edges(service)
        for ingress in lookup.of_kind("Ingress"):
            self.ingress(ingress)
        for kind in ROUTE_KINDS:
            for route in lookup.of_kind(kind):
                self.route(route)
        for resource, pod in self.workloads:
            found = _host_exposure(pod, self.containers_of(pod))
            if found is not None:
                self.entry(resource, found[0], found[1], node_kind="workload")

    def entry(self, resource: Resource, path: FieldPath, why: str, node_kind: str = "entry") -> None:
        node_id = self.node(resource.ref.describe(), node_kind, resource.ref.describe(), resource)
        node = self.nodes[node_id]
        self.nodes[node_id] = GraphNode(node.id, node.kind, node.label, node.resource, Evidence(resource, path), why,
                                        node.hidden)

    def service_edges(self, service: Resource) -> None:
        spec = mapping(service.body.get("spec"))
        selector = {str(k): str(v) for k, v in mapping(spec.get("selector")).items()}
        if not selector:
            return  # no selector: endpoints are managed by hand, not derived from pods
        source = self.node(service.ref.describe(), "service", service.ref.describe(), service)
        first_key = next(iter(mapping(spec.get("selector"))))
        ports = [mapping(p) for p in sequence(spec.get("ports"))]
        named = {p.get("targetPort") for p in ports if isinstance(p.get("targetPort"), str)}
        # every port targets a named port: a pod that declares none of them is no endpoint
        all_named = bool(ports) and all(isinstance(p.get("targetPort"), str) for p in ports)
        key, value = next(iter(selector.items()))
        for resource, pod, labels in self.labelled.get((self.lookup.scope(service), key, value), ()):
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            if all_named and not (_declared_ports(self.containers_of(pod)) & named):
                continue
            self.edge("exposes", source, self.workload_node(resource), [Evidence(service, ("spec", "selector", first_key))],
                      f"its selector matches the pod labels of {resource.ref.describe()}",
                      f"make {service.ref.describe()} internal (type ClusterIP, no externalIPs) or narrow its selector")

    def ingress(self, ingress: Resource) -> None:
        spec = mapping(ingress.body.get("spec"))
        backends: list[tuple[FieldPath, Any]] = []
        default = mapping(mapping(spec.get("defaultBackend")).get("service")).get("name")
        if default:
            backends.append((("spec", "defaultBackend", "service", "name"), default))
        host_path: FieldPath = ("spec",)
        for i, rule in enumerate(sequence(spec.get("rules"))):
            rule = mapping(rule)
            if i == 0:
                host_path = ("spec", "rules", 0, "host") if rule.get("host") else ("spec", "rules", 0)
            for j, entry in enumerate(sequence(mapping(rule.get("http")).get("paths"))):
                name = mapping(mapping(mapping(entry).get("backend")).get("service")).get("name")
                if name:
                    backends.append((("spec", "rules", i, "http", "paths", j, "backend", "service", "name"), name))
        if not backends:
            return
        self.entry(ingress, host_path, "an Ingress: reachable through the ingress controller")
        source = ingress.ref.describe()
        scope = self.lookup.scope(ingress)
        for path, name in backends:
            service = self.lookup.get("Service", scope, str(name))
            if service is not None:
                self.edge("routes", source, self.node(service.ref.describe(), "service", service.ref.describe(),
                                                      service), [Evidence(ingress, path)],
                          f"a backend of the Ingress is {service.ref.describe()}",
                          f"remove the backend from Ingress {ingress.ref.describe()}")

    def route(self, route: Resource) -> None:
        spec = mapping(route.body.get("spec"))
        if not sequence(spec.get("parentRefs")):
            return  # attached to no Gateway: it routes nothing
        self.entry(route, ("spec", "parentRefs", 0), f"a {route.kind} attached to a Gateway")
        for i, rule in enumerate(sequence(spec.get("rules"))):
            for j, ref in enumerate(sequence(mapping(rule).get("backendRefs"))):
                ref = mapping(ref)
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", None):
                    continue
                namespace = ref.get("namespace")
                scope = Scope(str(namespace)) if namespace else self.lookup.scope(route)
                service = self.lookup.get("Service", scope, str(ref.get("name")))
                if service is not None:
                    self.edge("routes", route.ref.describe(),
                              self.node(service.ref.describe(), "service", service.ref.describe(), service),
                              [Evidence(route, ("spec", "rules", i, "backendRefs", j, "name"))],
                              f"a backend of the route is {service.ref.describe()}",
                              f"remove the backendRef from {route.kind} {route.ref.describe()}")

    # tokens ----------------------------------------------------------------------------------

    def tokens(self) -> set[str]:
        """workload -> ServiceAccount edges; the ids of workloads whose pods hold a token."""
        holding: set[str] = set()
        for resource, pod in self.workloads:
            if is_static_pod(resource, lookup=self.lookup):
                continue  # the kubelet mounts no token into a static pod (NodeRestriction refuses them one)
            scope = self.lookup.scope(resource)
            name = _account_name(pod)
            evidence, why = self.token_evidence(resource, pod, scope, name)
            workload = self.workload_node(resource)
            if evidence is not None:
                holding.add(workload)
                self.edge("mounts-token", workload, self.account_node(scope, name), [Evidence(resource, evidence)], why,
                          f"set automountServiceAccountToken: false in the pod spec of {resource.ref.describe()} "
                          "(and mount no token volume) unless it calls the API")
            for path, secret in self.mounted_token_secrets(pod, scope):
                holding.add(workload)
                self.edge("mounts-token", workload, self.node(secret.ref.describe(), "secret", secret.ref.describe(),
                                                              secret),
                          [Evidence(resource, path)], f"it mounts the token Secret {secret.ref.describe()}",
                          f"stop mounting Secret {secret.ref.describe()} in {resource.ref.describe()}")
        return holding

    def token_evidence(self, resource: Resource, pod: PodSpec, scope: Scope, name: str
                       ) -> tuple[Optional[FieldPath], str]:
        for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
            for j, source in enumerate(sequence(mapping(mapping(volume).get("projected")).get("sources"))):
                token = mapping(source).get("serviceAccountToken")
                if token is None:
                    continue
                audience = mapping(token).get("audience")
                path = pod.path + ("volumes", index, "projected", "sources", j, "serviceAccountToken")
                if not audience or self.api_audience(str(audience)):
                    return path, "a projected service account token the API server accepts"
        setting = pod.spec.get("automountServiceAccountToken")
        if setting is False:
            return None, ""
        named = "serviceAccountName" if pod.spec.get("serviceAccountName") else \
            "serviceAccount" if pod.spec.get("serviceAccount") else None
        if setting is True:
            return pod.path + ("automountServiceAccountToken",), "the pod asks for its token to be mounted"
        account = self.accounts.get(scope, {}).get(name)
        if account is not None and account.body.get("automountServiceAccountToken") is False:
            return None, ""
        where = pod.path + (named,) if named else pod.path
        return where, "the token is automounted (neither the pod nor its ServiceAccount turns that off)"

    def api_audience(self, audience: str) -> bool:
        """Does the API server accept tokens for `audience`? Its --api-audiences, else its
        --service-account-issuer values. Not known from the scan: only the usual in-cluster names."""
        if self.apiservers:
            for _, component in self.apiservers:
                flags = component.flags
                accepted = [item for item, _ in flags.items("api-audiences")] or \
                    [item for item, _ in flags.items("service-account-issuer")]
                if audience in accepted:
                    return True
            return False
        return audience.rstrip("/") in ("https://kubernetes.default.svc", "https://kubernetes.default.svc.cluster.local",
                                         "kubernetes.default.svc", "api")

    def mounted_token_secrets(self, pod: PodSpec, scope: Scope) -> list[tuple[FieldPath, Resource]]:
        found: list[tuple[FieldPath, Resource]] = []
        names = {s.name: s for s in self.token_secrets.get(scope, ())}
        if not names:
            return found
        for index, volume in enumerate(sequence(pod.spec.get("volumes"))):
            name = mapping(mapping(volume).get("secret")).get("secretName")
            if isinstance(name, str) and name in names:
                found.append((pod.path + ("volumes", index, "secret", "secretName"), names[name]))
        return found

    # escapes and nodes ------------------------------------------------------------------------

    def escapes(self, holding: set[str]) -> None:
        nodes = self.lookup.of_kind("Node")
        escaping = []
        for resource, pod in self.workloads:
            routes = escape_routes(pod, self.containers_of(pod))
            if routes:
                escaping.append((resource, pod, routes))
        if not escaping and not self.any_node_used:
            return
        # pools: workloads whose pods have the same hard scheduling constraints
        pools: list[Constraints] = []
        pool_of: dict[str, int] = {}
        members: list[list[tuple[Resource, PodSpec]]] = []
        for resource, pod in self.workloads:
            constraints = Constraints(pod)
            index = pool_of.setdefault(constraints.key, len(pools))
            if index == len(pools):
                pools.append(constraints)
                members.append([])
            if resource.ref.describe() in holding:
                members[index].append((resource, pod))
        shared = shared_nodes(pools, nodes)
        # named by their constraints, not their order: a path's id must not move with the input's order
        self.pool_ids = [f"pool:{sha256(pool.key.encode()).hexdigest()[:16]}" for pool in pools]
        if not nodes:
            self.assumptions.append("no Node objects in the scan: pods whose nodeSelector and nodeName do not "
                                    "conflict are taken to be able to share a node (taints unknown)")
        used: set[int] = set()
        for resource, pod, routes in escaping:
            workload = self.workload_node(resource)
            node_of = self.node(f"node-of:{resource.ref.describe()}", "node",
                                f"node of {resource.ref.describe()}")
            self.edge("escapes-to-node", workload, node_of, [Evidence(resource, route.path) for route in routes],
                      "; ".join(route.why for route in routes),
                      f"remove {', '.join(route.what for route in routes)} from {resource.ref.describe()}")
            for j, node_name in shared[pool_of[Constraints(pod).key]]:
                if members[j]:
                    used.add(j)
                    self.edge("shares-node", node_of, self.pool_node(j),
                              [], f"both can run on node {node_name}" if node_name else "both can run on one node")
        if self.any_node_used:
            for j in range(len(pools)):
                if members[j]:
                    used.add(j)
                    self.edge("shares-node", ANY_NODE, self.pool_node(j), [], "a pod can name any node (nodeName)")
        for j in used:
            for resource, pod in members[j]:
                where = pod.path + ("tolerations",) if pod.spec.get("tolerations") else \
                    pod.path + ("nodeSelector",) if pod.spec.get("nodeSelector") else pod.path
                self.edge("shares-node", self.pool_node(j), self.workload_node(resource), [Evidence(resource, where)],
                          f"the pods of {resource.ref.describe()} can run there, with their token on the node's disk")

    def pool_node(self, index: int) -> str:
        return self.node(self.pool_ids[index], "pool", "pods that can share a node", hidden=True)

    def secrets(self) -> None:
        for scope, secrets in self.token_secrets.items():
            for secret in secrets:
                name = _secret_account(secret)
                self.edge("secret-token", self.node(secret.ref.describe(), "secret", secret.ref.describe(), secret),
                          self.account_node(scope, name),
                          [Evidence(secret, ("metadata", "annotations", SA_NAME_ANNOTATION))],
                          f"a long-lived token of ServiceAccount {name}",
                          f"delete the token Secret {secret.ref.describe()} (use short-lived tokens)")

    def kubelet(self) -> None:
        """Without NodeRestriction a kubelet's credential edits any Node and creates mirror pods with
        any ServiceAccount: from a node, the cluster. Only when the scan shows it off."""
        if not self.apiservers:
            self.assumptions.append("no kube-apiserver flags in the scan: NodeRestriction is taken to be on (the "
                                    "default of kubeadm and managed clusters)")
            return
        unrestricted = [(server, component) for server, component in self.apiservers
                        if not _node_restriction(component.flags)]
        if not unrestricted:
            return
        server, component = unrestricted[0]
        flags = component.flags
        disabled = [flag for item, flag in flags.items("disable-admission-plugins") if item == "NodeRestriction"]
        enabled = flags.last("enable-admission-plugins")
        flag = disabled[0] if disabled else enabled
        path = component.place(flag.path) if flag is not None else component.add_at
        for node_id in [n for n in self.nodes if n.startswith("node-of:")]:
            self.edge("kubelet-credential", node_id, self.crown("pods-in-kube-system"), [Evidence(server, path)],
                      "NodeRestriction is off: the kubelet's credential creates mirror pods as any ServiceAccount",
                      "enable the NodeRestriction admission plugin")

    # RBAC ------------------------------------------------------------------------------------

    def rbac(self) -> None:
        for scope, accounts in list(self.accounts.items()):
            for name in list(accounts):
                subject = Subject("ServiceAccount", name, scope.namespace, scope.group)
                grants = self.index.grants_of(subject)
                if grants:
                    account = self.account_node(scope, name)
                    for grant in grants:
                        self.bound(account, grant)

    def bound(self, account: str, grant: Grant) -> None:
        role_id = self.role_node(grant)
        index = next((i for i, member in indexed_binding_subjects(grant.binding) if member == grant.subject), None)
        path: FieldPath = ("subjects", index, "name") if index is not None else ("subjects",)
        binding = grant.binding
        source = account
        if grant.subject.kind == "Group":
            source = self.node(f"Group/{grant.subject.name}", "group", f"Group {grant.subject.name}")
            self.edge("bound", account, source, [], f"every ServiceAccount {grant.subject.name} names is in it")
        self.edge("bound", source, role_id, [Evidence(binding, path)], f"by {binding.ref.describe()}",
                  f"remove {grant.subject.describe()} from {binding.ref.describe()}")
        self.role_rules(role_id, grant)

    def role_node(self, grant: Grant) -> str:
        role = grant.role
        if role.kind == "Role":
            label = f"Role/{scope_text(self.lookup.scope(grant.binding))}/{role.name}"
        elif grant.namespaced:
            label = f"ClusterRole/{role.name}@{grant.scope or scope_text(self.lookup.scope(grant.binding))}"
        else:
            label = f"ClusterRole/{role.name}"
        return self.node(label, "role", label, role.resource)

    def role_rules(self, role_id: str, grant: Grant) -> None:
        if role_id in self.roles_done:
            return
        self.roles_done.add(role_id)
        role = grant.role
        scope = self.lookup.scope(grant.binding) if grant.namespaced else CLUSTER
        if grant.namespaced and grant.scope:
            scope = Scope(grant.scope)
        found: dict[str, list[tuple[int, Capability, Evidence]]] = {}
        for index, rule in enumerate(role.rules):
            if grant.namespaced and _only_cluster_scoped(rule):
                continue
            source = role.source_of(index)
            for capability in capabilities(rule):
                if source.resource is not None:
                    evidence = Evidence(source.resource, ("rules", source.index, *capability.path))
                else:  # a built-in role not in the scan: the binding's roleRef is where it is named
                    evidence = Evidence(grant.binding, ("roleRef", "name"))
                found.setdefault(capability.kind, []).append((index, capability, evidence))
                rule_id = self.node(f"{role_id} rules[{index}]", "rule", f"{role_id} rules[{index}]", hidden=True)
                self.edge("holds", role_id, rule_id, [evidence], "",
                          f"remove rules[{index}] from {role.label()} ({describe_rule(rule)})"
                          if source.resource is not None else
                          f"bind a narrower role than {role.label()} in {grant.binding.ref.describe()}")
                self.reach(rule_id, capability, evidence, scope, grant)
        self.combinations(role_id, found, scope, grant)

    def reach(self, rule_id: str, capability: Capability, evidence: Evidence, scope: Scope, grant: Grant) -> None:
        kind, names = capability.kind, capability.names
        cluster_wide = scope == CLUSTER
        in_system = cluster_wide or scope.namespace == "kube-system"
        scopes = list(self.accounts) if cluster_wide else [scope]
        if kind == "all":
            if cluster_wide:
                self.edge("grants", rule_id, self.crown("cluster-admin"), [evidence], "every verb on every resource")
                return
            for what in ("create-pods", "secrets", "exec"):
                self.reach(rule_id, Capability(what, None, capability.path), evidence, scope, grant)
            return
        if kind == "exec":
            for target_scope in scopes:
                self.fan(rule_id, "exec-into", target_scope, names, evidence, "pods/exec: run any command in its pods",
                         [(self.workload_node(r), "", r.name if r.kind == "Pod" else None)
                          for r, _ in self.by_scope.get(target_scope, ())])
        elif kind in ("create-pods", "patch-workloads"):
            if in_system:
                self.edge("grants", rule_id, self.crown("pods-in-kube-system"), [evidence],
                          "a pod in kube-system runs as any of its controllers' ServiceAccounts")
            verb = "create" if kind == "create-pods" else "patch"
            for target_scope in scopes:
                self.fan(rule_id, "creates-pod-as", target_scope, None, evidence,
                         f"{verb} pods in {scope_text(target_scope)}",
                         [(self.account_node(target_scope, name), f"a pod that names ServiceAccount {name} gets its token",
                           name) for name in self.accounts.get(target_scope, {})])
                if not self.psa_enforced(target_scope):
                    self.any_node_used = True
                    self.node(ANY_NODE, "node", "any node of the cluster")
                    self.edge("creates-pod-on-node", rule_id, ANY_NODE, [evidence],
                              f"Pod Security enforces no baseline in {scope_text(target_scope)}: a privileged pod "
                              "on a node of the attacker's choice")
        elif kind == "token":
            for target_scope in scopes:
                self.fan(rule_id, "mints-token", target_scope, names, evidence, "serviceaccounts/token create",
                         [(self.account_node(target_scope, name), "", name) for name in self.accounts.get(target_scope, {})])
        elif kind == "secrets":
            if in_system and (names is None):
                self.edge("grants", rule_id, self.crown("secrets-in-kube-system"), [evidence],
                          "get/list secrets in kube-system")
            for target_scope in scopes:
                self.fan(rule_id, "reads-secret", target_scope, names, evidence, "reads the token it holds",
                         [(self.node(s.ref.describe(), "secret", s.ref.describe(), s), "", s.name)
                          for s in self.token_secrets.get(target_scope, ())])
        elif kind == "impersonate-sa":
            for target_scope in scopes:
                self.fan(rule_id, "impersonates", target_scope, names, evidence, "impersonate it in API requests",
                         [(self.account_node(target_scope, name), "", name) for name in self.accounts.get(target_scope, {})])
        elif kind == "impersonate-user" and cluster_wide:
            self.edge("grants", rule_id, self.crown("cluster-admin"), [evidence],
                      "impersonate any user or group, system:masters included")
        elif kind == "nodes-proxy" and cluster_wide:
            self.edge("grants", rule_id, self.crown("nodes-proxy"), [evidence], "nodes/proxy: the kubelet API")

    def fan(self, rule_id: str, kind: str, scope: Scope, names: Optional[tuple[str, ...]], evidence: Evidence,
            why: str, targets: list[tuple[str, str, Optional[str]]]) -> None:
        """rule -> each target (node id, why, name) of `scope`. Unnarrowed, through one hidden hub per
        capability and scope, shared by every rule that has it: rules + targets edges, not rules x
        targets (a cluster-wide exec rule on 10,000 workloads)."""
        if not targets:
            return
        if names is not None:
            for target, because, name in targets:
                if name is not None and name in names:
                    self.edge(kind, rule_id, target, [evidence], because or why)
            return
        hub = f"hub:{kind}:{scope.namespace or ''}|{scope.group or ''}"
        if hub not in self.nodes:
            self.node(hub, "hub", f"{kind} in {scope_text(scope)}", hidden=True)
            for target, because, _ in targets:
                self.edge(kind, hub, target, [], because)
        self.edge(kind, rule_id, hub, [evidence], why)

    def combinations(self, role_id: str, found: Mapping[str, list[tuple[int, Capability, Evidence]]], scope: Scope,
                     grant: Grant) -> None:
        """Crowns two rules give together: bind + create bindings, escalate + update roles, CSR
        approval + a client signer."""
        def first(kind: str) -> Optional[tuple[int, Capability, Evidence]]:
            items = found.get(kind)
            return items[0] if items else None

        cluster_wide = scope == CLUSTER
        bind = first("bind")
        if bind is not None and binds_cluster_admin(bind[1].names):
            creating = first("create-cluster-bindings") if cluster_wide else first("create-bindings")
            if creating is not None:
                if cluster_wide:
                    self.edge("grants", role_id, self.crown("cluster-admin"), [bind[2], creating[2]],
                              "bind any ClusterRole and create a binding: a binding to cluster-admin",
                              f"remove bind (or limit it by resourceNames) in {grant.role.label()}")
                else:
                    for what in ("create-pods", "secrets", "exec"):
                        self.reach(role_id, Capability(what, None, bind[1].path), bind[2], scope, grant)
        escalate, update = first("escalate"), first("update-cluster-roles")
        if cluster_wide and escalate is not None and update is not None:
            self.edge("grants", role_id, self.crown("cluster-admin"), [escalate[2], update[2]],
                      "escalate and update ClusterRoles: write any permission into a role it holds",
                      f"remove escalate from {grant.role.label()}")
        approve, signer = first("csr-approve"), first("signer-approve")
        if cluster_wide and approve is not None and signer is not None:
            self.edge("grants", role_id, self.crown("csr-signing"), [approve[2], signer[2]],
                      "approve a CSR for any user or group, system:masters included",
                      f"remove CSR approval from {grant.role.label()}")

    def psa_enforced(self, scope: Scope) -> bool:
        if scope.namespace is None:
            return False
        namespace = self.lookup.get("Namespace", CLUSTER, scope.namespace)
        if namespace is None:
            return False
        level = labels_of(namespace.body.get("metadata")).get("pod-security.kubernetes.io/enforce")
        return level in ENFORCING


def _account_name(pod: PodSpec) -> str:
    return str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")


def _secret_account(secret: Resource) -> str:
    annotations = mapping(mapping(secret.body.get("metadata")).get("annotations"))
    name = annotations.get(SA_NAME_ANNOTATION)
    return name if isinstance(name, str) else ""


def _service_exposure(spec: Mapping[str, Any]) -> tuple[str, FieldPath]:
    kind = spec.get("type")
    if kind in ("LoadBalancer", "NodePort"):
        return f"a Service of type {kind}", ("spec", "type")
    if sequence(spec.get("externalIPs")):
        return "a Service with externalIPs", ("spec", "externalIPs", 0)
    return "", ()


def _host_exposure(pod: PodSpec, listed: list[Container]) -> Optional[tuple[FieldPath, str]]:
    for container in listed:
        for index, port in enumerate(sequence(container.body.get("ports"))):
            if isinstance(mapping(port).get("hostPort"), int) and mapping(port)["hostPort"] > 0:
                return container.path + ("ports", index, "hostPort"), "a hostPort on the node's address"
    if pod.spec.get("hostNetwork") is True:
        return pod.path + ("hostNetwork",), "hostNetwork: it listens on the node's addresses"
    return None


def _declared_ports(listed: list[Container]) -> set[str]:
    return {str(mapping(p).get("name")) for c in listed for p in sequence(c.body.get("ports"))
            if mapping(p).get("name")}


def _only_cluster_scoped(rule: Mapping[str, Any]) -> bool:
    resources = sequence(rule.get("resources"))
    return bool(resources) and all(isinstance(r, str) and r in CLUSTER_SCOPED for r in resources)


def _apiservers(lookup: Any) -> list[tuple[Resource, Any]]:
    """The kube-apiserver command lines the scan holds (static pods, kubeadm ClusterConfigurations)."""
    from kaudit.kubeadm import components

    return [(resource, component) for kind in ("Pod", "ClusterConfiguration", "ConfigMap")
            for resource in lookup.of_kind(kind) for component in components(resource)
            if component.program == "kube-apiserver"]


def _node_restriction(flags: Any) -> bool:
    """Is the NodeRestriction admission plugin on? (It is not among the API server's defaults.)"""
    return any(item == "NodeRestriction" for item, _ in flags.items("enable-admission-plugins")) and \
        not any(item == "NodeRestriction" for item, _ in flags.items("disable-admission-plugins"))


def build_graph(lookup: Any) -> AttackGraph:
    return _Builder(lookup).build()

