"""Which Pod Security policy version judges each pod.

The Pod Security admission controller judges a pod by its namespace's
`pod-security.kubernetes.io/enforce-version` label, else by the cluster's configured default
(AdmissionConfiguration `defaults.enforce-version`, normally `latest`). kaudit does the same,
unless the user forces one version for the whole scan:

1. `--framework pss-restricted@v1.25` (or `@latest`): forced, every pod;
2. the namespace's `enforce-version` label, when the scan holds that Namespace object;
3. `.kaudit.yaml` `pod-security-version` (the cluster default it stands for);
4. `latest`.

Admission semantics kept (k8s.io/pod-security-admission api/helpers.go `ParseVersion`,
policy/registry.go `EvaluatePod`): a label value that is not `latest` nor `v1.<n>` (no leading
zero, no spaces) counts as `latest`; `latest` and versions newer than the newest policy change
are judged at the newest one the checks know (`NEWEST`, or a cluster's own minor when older).
There is no version before v1.0: `v0.x` does not parse, so it is `latest` too. A version given by
the user (CLI, config) that does not parse is an error instead: the user can fix it.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Iterable, Mapping, Optional

from kaudit.errors import KauditError
from kaudit.value import field, record, value

Version = tuple[int, int]  # (1, minor)
NEWEST: Version = (1, 37)  # the highest MinimumVersion among the admission controller's checks
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"


@functools.cache
def _version_pattern() -> re.Pattern[str]:  # compiled on first use: not on the rule loader's path
    return re.compile(r"v1\.([0-9]|[1-9][0-9]{0,17})")  # Go's Atoi fails past int64: 18 digits are safe


def parse_version(text: Any) -> Optional[Version]:
    """`v1.<n>` as admission parses it; None for `latest` and for anything that does not parse."""
    if not isinstance(text, str):
        return None
    match = _version_pattern().fullmatch(text)
    return (1, int(match.group(1))) if match else None


def user_version(text: str, where: str) -> Optional[Version]:
    """A version the user wrote: `latest` (None) or `v1.<n>`; anything else is an error."""
    if text == "latest":
        return None
    version = parse_version(text)
    if version is None:
        raise KauditError(f'{where}: Pod Security version {text!r} must be "latest" or "v1.<minor>", e.g. v1.25')
    return version


def text(version: Version) -> str:
    return f"v{version[0]}.{version[1]}"


@value
class Choice:
    """The version that judges a pod, and why; `note` is said in its findings (empty: the default)."""

    version: Version
    note: str = ""


@record
class PodSecurityVersions:
    """The scan's rule for choosing versions (see the module doc); one `Choice` per namespace."""

    forced: Optional[str] = None  # "v1.25" / "latest" from --framework NAME@VERSION
    default: Optional[str] = None  # from .kaudit.yaml pod-security-version ("latest": as if unset)
    ceiling: Version = NEWEST  # a cluster's own newest (its minor, when older than NEWEST)
    pinned: dict[str, str] = field(default_factory=dict)  # namespace -> its enforce-version label
    _choices: dict[Optional[str], Choice] = field(default_factory=dict, repr=False)

    def with_namespaces(self, namespaces: Iterable[Any]) -> "PodSecurityVersions":
        """Reads the enforce-version labels of the Namespace objects (resources) of the scan."""
        for namespace in namespaces:
            metadata = namespace.body.get("metadata")
            labels = metadata.get("labels") if isinstance(metadata, dict) else None
            if isinstance(labels, dict) and ENFORCE_VERSION_LABEL in labels:
                value = labels[ENFORCE_VERSION_LABEL]
                self.pinned.setdefault(namespace.name, value if isinstance(value, str) else repr(value))
        self._choices.clear()
        return self

    def _clamp(self, version: Optional[Version]) -> Version:
        return self.ceiling if version is None or version > self.ceiling else version

    def for_namespace(self, namespace: Optional[str]) -> Choice:
        choice = self._choices.get(namespace)
        if choice is None:
            choice = self._choices[namespace] = self._choose(namespace)
        return choice

    def _choose(self, namespace: Optional[str]) -> Choice:
        if self.forced is not None:
            return self._choice(self.forced, "forced by --framework")
        label = self.pinned.get(namespace) if namespace is not None else None
        if label is not None:
            return self._choice(label, f"pinned by namespace {namespace}")
        if self.default not in (None, "latest"):
            return self._choice(str(self.default), "pod-security-version in .kaudit.yaml")
        version = self._clamp(None)
        return Choice(version, "" if version == NEWEST else f"latest of the cluster (v{version[0]}.{version[1]})")

    def _choice(self, wanted: str, why: str) -> Choice:
        parsed = parse_version(wanted)
        version = self._clamp(parsed)
        if wanted == "latest":
            said = "latest"
        elif parsed is None:  # a label anyone can write: quoted, and at most 40 characters of it
            shown = wanted if len(wanted) <= 40 else wanted[:40] + "…"
            said = f"{shown!r} is not a version: latest, as admission reads it"
        elif parsed != version:
            said = f"{wanted} is past the newest policy version"
        else:
            said = ""
        return Choice(version, ", ".join(part for part in (said, why) if part))

    def describe(self) -> str:
        """For the framework title: which versions judged the scan's pods."""
        if self.forced is not None:
            return f"policy version {text(self.for_namespace(None).version)}, forced by --framework"
        default = self.for_namespace(None)
        where = "pod-security-version in .kaudit.yaml" if self.default not in (None, "latest") else "latest"
        parts = [f"policy version {text(default.version)} ({where})"]
        pins = sorted((name, self.for_namespace(name).version) for name in self.pinned)
        if pins:
            parts.append("namespaces pinning one: " + ", ".join(f"{name} {text(v)}" for name, v in pins))
        return "; ".join(parts)


def cluster_ceiling(server_version: Optional[str]) -> Version:
    """A cluster's admission controller knows the checks up to its own minor (registry maxVersion)."""
    match = re.match(r"v?1\.([0-9]+)", server_version or "")
    if not match:
        return NEWEST
    return min(NEWEST, (1, int(match.group(1))))
