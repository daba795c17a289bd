"""Render a Helm chart directory with Helm's own engine into documents that name their template.

Two renderers, the first available wins (`select_renderer`):
- "helm-python-sdk": the `helm_python` module (PyPI `helm-python-sdk`, Helm v4's Go SDK through
  ctypes, `pip install 'kaudit[helm]'`). It returns a map "<chart name>/templates/x.yaml" -> text.
  Its public `Chart.render` has no Capabilities options, but the C function under it takes
  `kube_version` and `api_versions` (Helm's own render options), so we call it with them.
- "helm-binary": `helm template` from PATH; its stream separates documents with `---` and
  `# Source: <chart name>/templates/x.yaml` comments.
Both render client-only: no cluster is contacted (`lookup` returns nothing). Helm itself merges the
chart's values with ours and validates the result against every values.schema.json in the chart.

Semantics kept from `helm template`: values files are merged in order (maps deeply, anything else
replaced), then each `--set` on top; hooks and test hooks are rendered (they run in the cluster
too); NOTES.txt is not a manifest and is dropped; a template whose output is empty (an `if` that was
false) gives no document. Dependencies declared in Chart.yaml but not vendored in charts/
(directory or .tgz) are an error naming them, unless `dependency_update`, which, like
`helm template --dependency-update`, downloads them from their repositories (network) into the
chart's charts/ directory and writes Chart.lock.

Bounded: a render has a timeout and its output a size cap. The SDK renders in-process, so on timeout
the render is abandoned in its thread (Go cannot be interrupted mid-template) and RenderError is
raised; the binary is killed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from typing import Any, Callable, Optional

from kaudit.value import field, value

SDK = "helm-python-sdk"
BINARY = "helm-binary"
RENDERERS = (SDK, BINARY)
INSTALL_HINT = ("no Helm renderer: install the extra (pip install 'kaudit[helm]') "
                "or put a helm binary on PATH (https://helm.sh/docs/intro/install/)")
DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
MAX_VALUES_FILE_BYTES = 16 * 1024 * 1024

# Helm's SplitManifests separator: a line that starts with `---`
_DOCUMENT_SEPARATOR = re.compile(r"(?m)^---[ \t]*(?:#[^\n]*)?$\n?")
_SOURCE_COMMENT = re.compile(r"(?m)\A\s*# Source: ([^\n]+)\n")


class RenderError(Exception):
    """The chart does not render; the message is the renderer's own."""


class RenderTimeout(RenderError):
    """The render did not finish within its timeout."""


class RendererMissing(RenderError):
    """No renderer is available (or the one asked for is not)."""


@value
class HelmOptions:
    values_files: tuple[str, ...] = ()
    set_values: tuple[str, ...] = ()
    release: str = "release-name"
    namespace: str = "default"
    kube_version: Optional[str] = None
    api_versions: tuple[str, ...] = ()
    dependency_update: bool = False


@value
class RenderedDocument:
    text: str
    template: str  # relative to the chart directory: "templates/x.yaml", "charts/redis/templates/sts.yaml"
    # Helm's own name for it, "<chart>/charts/<alias>/templates/sts.yaml": distinct for each alias
    # of one vendored subchart (whose documents share `template`)
    source: str = ""
    # lines of the template's output before this document's first line (several documents of one
    # template, or a `# Source:` comment): line N of `text` is line offset+N of the template's output
    offset: int = 0


@value
class HelmRender:
    chart: str
    renderer: str
    documents: tuple[RenderedDocument, ...]
    # each template's whole output by Helm's name (`source`), which `offset` counts lines in
    outputs: dict[str, str] = field(default_factory=dict)


def sdk_available() -> bool:
    try:
        import helm_python  # noqa: F401
    except (ImportError, OSError):  # OSError: the shared library does not load on this platform
        return False
    return True


def helm_binary(path: Optional[str] = None) -> Optional[str]:
    """The helm executable on `path` (default: $PATH), or None."""
    return shutil.which("helm", path=path)


def select_renderer(prefer: Optional[str] = None, path: Optional[str] = None) -> str:
    """The renderer to use: `prefer` if given and available, else the SDK, else the binary."""
    if prefer is not None and prefer not in RENDERERS:
        raise ValueError(f"unknown Helm renderer {prefer!r}")
    if prefer in (None, SDK) and sdk_available():
        return SDK
    if prefer in (None, BINARY) and helm_binary(path) is not None:
        return BINARY
    if prefer == SDK:
        raise RendererMissing("helm-python-sdk is not installed: pip install 'kaudit[helm]'")
    if prefer == BINARY:
        raise RendererMissing("no helm binary on PATH: install helm (https://helm.sh/docs/intro/install/)")
    raise RendererMissing(INSTALL_HINT)


def render_chart(chart_dir: str, options: HelmOptions, renderer: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, max_output_bytes: int = MAX_OUTPUT_BYTES,
                 path: Optional[str] = None, extra_values: Optional[dict[str, Any]] = None) -> HelmRender:
    """Render `chart_dir`; `renderer` forces one backend, `path` is the PATH searched for helm.
    `extra_values` are merged over the user's values and --set (values provenance perturbs them)."""
    with ChartRenderer(chart_dir, options, renderer, max_output_bytes, path) as loaded:
        return loaded.render(extra_values, timeout)


class ChartRenderer:
    """One chart rendered many times with different `extra_values` (values provenance): with the
    SDK the chart is loaded (and the user's values read) once; the binary reads it on every render.
    Close it (or use it as a context manager); a chart whose render was abandoned at its timeout is
    not freed (its thread may still be rendering it)."""

    def __init__(self, chart_dir: str, options: HelmOptions, renderer: Optional[str] = None,
                 max_output_bytes: int = MAX_OUTPUT_BYTES, path: Optional[str] = None, without_notes: bool = False
                 ) -> None:
        # without_notes (SDK only): the chart's templates/NOTES.txt is left out, so a `fail` in it
        # (Bitnami's check of substituted images) does not stop a render whose NOTES no one reads
        self.without_notes = without_notes
        self.chart_dir = chart_dir
        self.options = options
        self.renderer = select_renderer(renderer, path)
        self.max_output_bytes = max_output_bytes
        self.path = path
        self._chart: Any = None
        self._user_values: dict[str, Any] = {}
        self._abandoned = False
        if not os.path.isfile(os.path.join(chart_dir, "Chart.yaml")):
            raise RenderError(f"{chart_dir}: not a chart (no Chart.yaml)")

    def __enter__(self) -> "ChartRenderer":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._chart is not None and not self._abandoned:
            self._chart.close()
        self._chart = None

    def render(self, extra_values: Optional[dict[str, Any]] = None,
               timeout: float = DEFAULT_TIMEOUT_SECONDS) -> HelmRender:
        chart_dir, options = self.chart_dir, self.options
        if self.renderer == SDK:
            try:
                rendered = _with_timeout(lambda: self._render_sdk(extra_values), timeout, chart_dir)
            except RenderTimeout:
                self._abandoned = True  # its thread may still render with the loaded chart
                raise
            output = sum(len(text) for text in rendered.values())
            if output > self.max_output_bytes:
                raise RenderError(f"{chart_dir}: rendered output is {output} bytes, over the cap of "
                                  f"{self.max_output_bytes}")
            documents = _documents_from_map(rendered)
            outputs = {source: text for source, text in rendered.items() if _is_manifest(source)}
        else:
            binary = helm_binary(self.path)
            assert binary is not None  # select_renderer found it
            documents = _documents_from_stream(_render_binary(binary, chart_dir, options, timeout,
                                                              self.max_output_bytes, extra_values))
            outputs = _outputs_of(documents)
        if any(document.template.startswith("charts/") for document in documents):
            subcharts = _SubchartPaths(chart_dir)
            documents = tuple(RenderedDocument(text=document.text, template=subcharts.resolve(document.template),
                                               source=document.source, offset=document.offset)
                              for document in documents)
        return HelmRender(chart=chart_dir, renderer=self.renderer, documents=documents, outputs=outputs)

    def _render_sdk(self, extra_values: Optional[dict[str, Any]]) -> dict[str, str]:
        import helm_python

        try:
            if self._chart is None:
                if self.options.dependency_update:
                    helm_python.dependency_update(self.chart_dir)
                chart = (helm_python.Chart.load_archive(_archive_without_notes(self.chart_dir))
                         if self.without_notes else helm_python.Chart.load(self.chart_dir))
                try:
                    _check_dependencies(self.chart_dir, chart.metadata, chart.dependencies)
                    self._user_values = _user_values(self.options)
                except BaseException:
                    chart.close()
                    raise
                self._chart = chart
            values = _merge(self._user_values, extra_values) if extra_values else self._user_values
            return _render_loaded(self.chart_dir, self._chart, values, self.options)
        except helm_python.HelmError as error:
            raise RenderError(f"{self.chart_dir}: {error}") from None


def _with_timeout(render: Callable[[], dict[str, str]], timeout: float, chart_dir: str) -> dict[str, str]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = render()
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"helm-render {chart_dir}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise RenderTimeout(f"{chart_dir}: rendering did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    result: dict[str, str] = outcome["result"]
    return result


def _archive_without_notes(chart_dir: str) -> bytes:
    """The chart directory as a .tgz in memory, without its own templates/NOTES.txt."""
    import io
    import tarfile

    buffer = io.BytesIO()
    root = os.path.basename(os.path.normpath(chart_dir)) or "chart"
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        for directory, subdirectories, files in os.walk(chart_dir):
            subdirectories[:] = sorted(name for name in subdirectories if name != ".git")
            for name in sorted(files):
                full = os.path.join(directory, name)
                relative = os.path.relpath(full, chart_dir)
                if relative != os.path.join("templates", "NOTES.txt") and os.path.isfile(full):
                    archive.add(full, arcname=f"{root}/{relative}", recursive=False)
    return buffer.getvalue()


def _render_loaded(chart_dir: str, chart: Any, values: dict[str, Any], options: HelmOptions) -> dict[str, str]:
    from helm_python import _native

    if options.kube_version is None and not options.api_versions:
        rendered: dict[str, str] = chart.render(values, name=options.release, namespace=options.namespace,
                                                is_install=True)
        return rendered
    render_options: dict[str, Any] = {"name": options.release, "namespace": options.namespace,
                                      "is_install": True, "api_versions": list(options.api_versions)}
    if options.kube_version is not None:
        render_options["kube_version"] = options.kube_version
    # Chart.render plus the Capabilities options it does not expose (see the module doc)
    try:
        payload = _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(render_options))
    except (AttributeError, TypeError) as error:
        import helm_python

        raise RenderError(f"{chart_dir}: this helm-python-sdk ({helm_python.__version__}) cannot set "
                          f"the Kubernetes version or API versions: {error}") from None
    loaded: dict[str, str] = json.loads(payload)
    return loaded


def _check_dependencies(chart_dir: str, metadata: dict[str, Any], loaded: list[dict[str, Any]]) -> None:
    # what `helm template` does (action.CheckDependencies): every dependency in Chart.yaml must be
    # in charts/, even one whose condition is false
    present = {dependency.get("name") for dependency in loaded}
    missing = [str(dependency.get("name")) for dependency in metadata.get("dependencies") or []
               if dependency.get("name") not in present]
    if missing:
        raise RenderError(f"{chart_dir}: found in Chart.yaml, but missing in charts/ directory: "
                          f"{', '.join(missing)} (vendor them with `helm dependency build`, or allow "
                          "downloading them with --helm-dependency-update)")


def _user_values(options: HelmOptions) -> dict[str, Any]:
    import helm_python

    values: dict[str, Any] = {}
    for values_file in options.values_files:
        try:
            with open(values_file, "rb") as stream:
                data = stream.read(MAX_VALUES_FILE_BYTES + 1)
        except OSError as error:
            raise RenderError(f"{values_file}: {error.strerror or error}") from None
        if len(data) > MAX_VALUES_FILE_BYTES:
            raise RenderError(f"{values_file}: values file over {MAX_VALUES_FILE_BYTES} bytes")
        try:
            values = _merge(values, helm_python.values_from_yaml(data.decode("utf-8", "replace")))
        except helm_python.HelmError as error:
            raise RenderError(f"{values_file}: {error}") from None
    for expression in options.set_values:
        try:
            values = _merge(values, helm_python.parse_set_string(expression))
        except helm_python.HelmError as error:
            raise RenderError(f"--set {expression.split('=', 1)[0]}: {error}") from None
    return values


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    # Helm's mergeMaps: maps merge key by key, any other value (lists included) is replaced
    merged = dict(base)
    for key, new in override.items():
        old = merged.get(key)
        merged[key] = _merge(old, new) if isinstance(old, dict) and isinstance(new, dict) else new
    return merged


def _render_binary(binary: str, chart_dir: str, options: HelmOptions, timeout: float,
                   max_output_bytes: int, extra_values: Optional[dict[str, Any]] = None) -> str:
    command = [binary, "template", options.release, chart_dir, "--namespace", options.namespace]
    for values_file in options.values_files:
        command += ["--values", values_file]
    for expression in options.set_values:
        command += ["--set", expression]
    if extra_values:  # Helm applies --set-json after values files and before --set
        for key, value in _flatten(extra_values):
            command += ["--set-json", f"{key}={json.dumps(value)}"]
    if options.kube_version is not None:
        command += ["--kube-version", options.kube_version]
    for api_version in options.api_versions:
        command += ["--api-versions", api_version]
    if options.dependency_update:
        command.append("--dependency-update")
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RenderTimeout(f"{chart_dir}: rendering did not finish within {timeout:g} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[:4000]
        raise RenderError(f"{chart_dir}: {message or f'helm template exited {done.returncode}'}")
    if len(done.stdout) > max_output_bytes:
        raise RenderError(f"{chart_dir}: rendered output is {len(done.stdout)} bytes, over the cap of {max_output_bytes}")
    return done.stdout.decode("utf-8", "replace")


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Leaf keys as `--set-json` paths (a.b.c); a map at a leaf (an empty one) is set whole."""
    flat: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = f"{prefix}{key.replace('.', chr(92) + '.')}"
        if isinstance(value, dict) and value:
            flat += _flatten(value, path + ".")
        else:
            flat.append((path, value))
    return flat


def _relative_template(source: str) -> str:
    # "<chart name>/templates/x.yaml" -> "templates/x.yaml"; the root chart's name is Chart.yaml's,
    # not the directory's, so the first component is dropped whatever it is
    return source.split("/", 1)[1] if "/" in source else source


class _SubchartPaths:
    """Maps Helm's subchart names in template paths back to the directories under charts/.

    Helm names a subchart by its dependency alias (`charts/store/...` for `alias: store`) or its
    chart name, which need not be its directory's name; a path that names nothing on disk helps no
    one fix a finding. A packed subchart (.tgz) keeps Helm's logical path: it has no directory.
    """

    def __init__(self, chart_dir: str) -> None:
        self.chart_dir = chart_dir
        self._levels: dict[str, dict[str, str]] = {}

    def resolve(self, template: str) -> str:
        parts = template.split("/")
        resolved: list[str] = []
        index = 0
        while index + 1 < len(parts) and parts[index] == "charts":
            level = os.path.join(self.chart_dir, *resolved)
            directory = self._names(level).get(parts[index + 1], parts[index + 1])
            resolved += ["charts", directory]
            index += 2
        return "/".join(resolved + parts[index:])

    def _names(self, level: str) -> dict[str, str]:
        """Helm's name for each subchart of the chart at `level` (alias or chart name) -> its directory."""
        if level not in self._levels:
            directories = vendored_subcharts(level)
            names = dict(directories)
            # one chart can be vendored once and used under several aliases
            for dependency in chart_yaml(level).get("dependencies") or []:
                if isinstance(dependency, dict) and isinstance(dependency.get("alias"), str) \
                        and dependency.get("name") in directories:
                    names[dependency["alias"]] = directories[dependency["name"]]
            self._levels[level] = names
        return self._levels[level]


def vendored_subcharts(chart_dir: str) -> dict[str, str]:
    """Each subchart directory under the chart's charts/ by its chart name (Chart.yaml `name`, which
    need not be the directory's): name -> directory name, the first in name order when two share one."""
    directories: dict[str, str] = {}
    charts = os.path.join(chart_dir, "charts")
    for directory in sorted(os.listdir(charts)) if os.path.isdir(charts) else []:
        name = chart_yaml(os.path.join(charts, directory)).get("name")
        if isinstance(name, str):
            directories.setdefault(name, directory)
    return directories


def chart_yaml(chart_dir: str) -> dict[str, Any]:
    import yaml

    try:
        with open(os.path.join(chart_dir, "Chart.yaml"), "rb") as stream:
            loaded = yaml.safe_load(stream.read(1024 * 1024))
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _is_manifest(template: str) -> bool:
    return not template.endswith("NOTES.txt")


def _split_documents(text: str) -> list[tuple[str, int]]:
    """The documents with content, each with the number of lines before it in `text`."""
    documents, start, lines, counted = [], 0, 0, 0
    for separator in [*_DOCUMENT_SEPARATOR.finditer(text), None]:
        end = len(text) if separator is None else separator.start()
        document = text[start:end]
        if _has_content(document):
            lines += text.count("\n", counted, start)  # counted on from the last document: linear
            counted = start
            documents.append((document, lines))
        if separator is not None:
            start = separator.end()
    return documents


def _has_content(document: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in document.splitlines())


def _documents_from_map(rendered: dict[str, str]) -> tuple[RenderedDocument, ...]:
    documents = []
    for source in sorted(rendered):
        template = _relative_template(source)
        if _is_manifest(template):
            documents += [RenderedDocument(text=text, template=template, source=source, offset=offset)
                          for text, offset in _split_documents(rendered[source])]
    return tuple(documents)


def _outputs_of(documents: tuple[RenderedDocument, ...]) -> dict[str, str]:
    """Each template's output as `helm template` prints it: its documents one after another, each
    followed by a `---` line (the offsets of _documents_from_stream count lines the same way)."""
    outputs: dict[str, list[str]] = {}
    for document in documents:
        text = document.text if document.text.endswith("\n") else document.text + "\n"
        outputs.setdefault(document.source, []).append(text + "---\n")
    return {source: "".join(parts) for source, parts in outputs.items()}


def _documents_from_stream(stream: str) -> tuple[RenderedDocument, ...]:
    documents = []
    lines_before: dict[str, int] = {}  # each template's documents follow one another in its output
    for document, _ in _split_documents(stream):
        source = _SOURCE_COMMENT.match(document)
        if source is None:
            continue  # every manifest of `helm template` carries its Source comment
        name = source.group(1).strip()
        template = _relative_template(name)
        text = document[source.end():]
        if _is_manifest(template):
            offset = lines_before.get(name, 0)
            documents.append(RenderedDocument(text=text, template=template, source=name, offset=offset))
            lines_before[name] = offset + len(text.splitlines()) + 1  # and its `---`
    return tuple(documents)
