"""Command line: parse options, call one function, map the result to an exit code.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 kaudit could not do what
was asked (bad usage or config, unreadable or malformed input, a rule that could not run).

The parser is the standard library's argparse (a pre-commit run pays for every import). Commands
are plain functions whose keyword parameters are the options' dests; `_tree()` declares them.
"""
from __future__ import annotations

import argparse
import functools  # loaded by re already
import os
import re
import sys

from kaudit import __version__
from kaudit.errors import KauditError

TYPE_CHECKING = False  # typing stays off the hook path; mypy reads the imports below
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Optional, Sequence, TextIO
    from kaudit.sources.units import RenderOptions

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
FAIL_ON_CHOICES = ["critical", "high", "medium", "low", "info", "never"]


class UsageError(KauditError):
    """The command line asks for something kaudit cannot do: one line on stderr, exit 2."""

    def __init__(self, message: str, prog: Optional[str] = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Exit(Exception):
    """argparse finished the run itself (-h, --version): exit with this code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _pair_outputs(args: Sequence[str]) -> list[tuple[str, Optional[str]]]:
    """The -f/-o pairs in command-line order: each -o belongs to the -f before it."""
    pairs: list[list[Any]] = []
    pending_output: list[str] = []
    iterator = iter(args)
    for arg in iterator:
        if arg == "--":
            break
        for flag, long in (("-f", "--format"), ("-o", "--output")):
            value = None
            if arg in (flag, long):
                value = next(iterator, None)
            elif arg.startswith(long + "="):
                value = arg[len(long) + 1:]
            elif arg.startswith(flag) and len(arg) > 2 and not arg.startswith("--"):
                value = arg[2:]
            if value is None:
                continue
            if flag == "-f":
                pairs.append([value, None])
            elif pairs and pairs[-1][1] is None:
                pairs[-1][1] = value
            else:
                pending_output.append(value)
    if pending_output:
        raise UsageError("-o/--output must follow the -f/--format it is for: -f json -o report.json")
    return [(fmt, out) for fmt, out in pairs]


def scan(raw_args: Sequence[str], paths: tuple[str, ...], fail_on: Optional[str], rule_dirs: tuple[str, ...],
         select: tuple[str, ...], frameworks: tuple[str, ...], config: Optional[str], baseline: Optional[str],
         formats: tuple[str, ...], outputs: tuple[str, ...],
         max_file_size: Optional[float], per_file: bool, cross_object_only: bool, contexts: tuple[str, ...], all_contexts: bool,
         kubeconfig: Optional[str], in_cluster: bool, namespaces: tuple[str, ...],
         exclude_namespaces: tuple[str, ...], allow_gaps: bool, request_timeout: float, verify_images: bool,
         cosign_keys: tuple[str, ...], resolve_digests: bool, registry_config: Optional[str],
         registry_ca: Optional[str], insecure_registries: tuple[str, ...], image_cache: Optional[str],
         image_cache_ttl: Optional[int], jobs: int, allow_empty: bool, include_platform: bool,
         default_namespace: Optional[str], quiet: bool = False, verbose: bool = False,
         min_severity: Optional[str] = None, color: Optional[str] = None, **render: Any) -> int:
    """Scan manifests (files, directories, globs, '-' for stdin) or a live cluster (--context)."""
    import gc

    # A scan is one short pass that builds large acyclic structures (parsed objects, findings, the
    # report) and exits: the cyclic collector would only re-traverse them, at up to half the
    # report-building time on big trees. Reference counting still frees everything.
    gc.disable()
    from kaudit.scan import ScanRequest, scan_manifests
    from kaudit.sources.manifests import DEFAULT_MAX_FILE_MB

    destinations = _pair_outputs(raw_args) or [("text", None)]
    cluster_mode = bool(contexts or all_contexts or in_cluster)
    if cluster_mode and default_namespace is not None:
        raise UsageError("--default-namespace is for manifest scans (PATH...); with --context, -n selects "
                         "namespaces")
    manifest_namespace = None if cluster_mode else _default_namespace(namespaces, default_namespace)
    request = ScanRequest(
        targets=paths, render=_render_request(render, manifest_namespace), rule_dirs=rule_dirs,
        fail_on=fail_on.lower() if fail_on else None, config=config,
        select=select, frameworks=frameworks, baseline=baseline, max_file_mb=max_file_size or DEFAULT_MAX_FILE_MB,
        per_file=per_file, cross_object_only=cross_object_only, allow_gaps=allow_gaps, jobs=jobs, allow_empty=allow_empty,
        include_platform=include_platform,
        default_namespace=manifest_namespace,
        images=_image_request(verify_images, cosign_keys, resolve_digests, registry_config, registry_ca,
                              insecure_registries, image_cache, image_cache_ttl, config),
    )
    writers = _writers(destinations, _display(quiet, verbose, min_severity, color))  # unknown formats fail first
    if cluster_mode and paths:
        raise UsageError("scan manifests (PATH...) or a cluster (--context / --in-cluster), not both")
    if not cluster_mode and (exclude_namespaces or kubeconfig):
        raise UsageError("--exclude-namespace and --kubeconfig need --context or --in-cluster")
    failed: list[str] = []
    if not cluster_mode:
        reports = [scan_manifests(request)]
    else:
        names = [] if in_cluster else _context_names(contexts, all_contexts, kubeconfig)
        if len(names) > 1 and any(out in (None, "-") and fmt.lower() in SINGLE_DOCUMENT_FORMATS
                                  for fmt, out in destinations):
            raise UsageError("with several contexts, html, sarif and junit reports need -o FILE "
                             "(one file per context); json on standard output is one report per line")
        reports, failed = _scan_clusters(request, names, kubeconfig, namespaces, exclude_namespaces, request_timeout,
                                         progress=not quiet)
    several = len(reports) + len(failed) > 1
    for report in reports:
        _write_all(report, writers, several=several)
        if not any(out in (None, "-") and fmt.lower() == "text" for fmt, out in destinations):
            _tell_stderr(report, several)  # nobody reads a text report: errors and the verdict still show
    for message in failed:
        print(f"kaudit: {message}", file=sys.stderr)
    codes = [_exit_code(report) for report in reports] + [EXIT_ERROR for _ in failed]
    return max(codes)


SINGLE_DOCUMENT_FORMATS = ("html", "sarif", "junit")
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # an RFC 1123 label, as the API requires


def _render_request(given: dict[str, Any], namespace: Optional[str]) -> RenderOptions:
    """The render options (`_render_options`) as the scan takes them."""
    from kaudit.sources.units import RenderOptions

    return RenderOptions(
        helm_values=given.get("helm_values", ()), helm_set=given.get("helm_set", ()),
        helm_release=given.get("helm_release") or RenderOptions().helm_release,
        helm_namespace=given.get("helm_namespace") or namespace, kube_version=given.get("kube_version"),
        api_versions=given.get("api_versions", ()), helm_dependency_update=bool(given.get("helm_dependency_update")),
        helm_renderer=given.get("helm_renderer"), kustomize_allow_remote=bool(given.get("kustomize_allow_remote")),
        trace_values=not given.get("no_values_trace"))


def _default_namespace(namespaces: tuple[str, ...], default_namespace: Optional[str]) -> Optional[str]:
    """The one namespace a manifest scan puts objects without one in (-n or --default-namespace)."""
    given = list(dict.fromkeys([*namespaces, *([default_namespace] if default_namespace is not None else [])]))
    if not given:
        return None
    if len(given) > 1:
        raise UsageError(f"a manifest scan takes one namespace, as `kubectl apply -n` does (given: "
                         f"{', '.join(given)}); scan each namespace's manifests apart")
    if not _NAMESPACE_NAME.match(given[0]):
        raise UsageError(f"-n {given[0]!r}: not a namespace name (at most 63 lowercase letters, digits "
                         "and '-', starting and ending with a letter or digit)")
    return given[0]


def _tell_stderr(report: Any, several: bool) -> None:
    """What the text report would have shown a person: errors, gaps and the one-line verdict."""
    from kaudit.writers.text import problem_lines, summary_line

    prefix = f"[{report.coverage.context}] " if several and report.coverage is not None else ""
    for line in problem_lines(report):
        print(prefix + line, file=sys.stderr)
    print(prefix + summary_line(report), file=sys.stderr)


def _image_request(verify: bool, key_files: tuple[str, ...], resolve: bool, registry_config: Optional[str],
                   ca: Optional[str], insecure: tuple[str, ...], cache: Optional[str], ttl: Optional[int],
                   config_path: Optional[str]) -> Any:
    """Image checks from flags and the config's `image-signatures`; None when nothing asks for them."""
    if not (verify or resolve):
        if key_files:
            raise UsageError("--cosign-key needs --verify-images")
        return None
    from pathlib import Path

    from kaudit.config import load_config
    from kaudit.registry.client import RegistryOptions
    from kaudit.registry.cosign import TrustedKey
    from kaudit.registry.verify import DEFAULT_CACHE, ImageCheckRequest

    settings = load_config(config_path).image_signatures
    keys = []
    for name, scopes in [(f, ()) for f in key_files] + [(k["file"], tuple(k.get("scopes", ()))) for k in
                                                         settings.get("keys", [])]:
        try:
            pem = Path(name).read_bytes()
        except OSError as error:
            raise KauditError(f"{name}: cannot read cosign key: {error.strerror or error}") from None
        if b"PUBLIC KEY" not in pem:
            raise KauditError(f"{name}: not a PEM public key (cosign.pub)")
        keys.append(TrustedKey(Path(name).name, pem, scopes))
    if verify and not keys:
        raise KauditError("--verify-images needs at least one trusted key: --cosign-key FILE or "
                          "image-signatures.keys in the config")
    ttl = ttl if ttl is not None else int(settings.get("cache-ttl", 3600))
    options = RegistryOptions(ca_file=ca or settings.get("ca-file"), docker_config=registry_config,
                              insecure=frozenset(insecure) | frozenset(settings.get("insecure-registries", ())))
    return ImageCheckRequest(verify=verify, resolve=True, keys=tuple(keys), options=options,
                             cache_file=(cache or str(DEFAULT_CACHE)) if ttl else None, ttl_seconds=ttl)


def _exit_code(report: Any) -> int:
    if not report.complete:
        return EXIT_ERROR
    return EXIT_FINDINGS if report.failing_findings() else EXIT_OK


def _context_names(contexts: tuple[str, ...], all_contexts: bool, kubeconfig: Optional[str]) -> list[str]:
    if not all_contexts:
        return list(dict.fromkeys(contexts))
    from kaudit.sources.cluster import contexts as kubeconfig_contexts

    names: list[str] = kubeconfig_contexts(kubeconfig)
    if not names:
        raise KauditError(f"kubeconfig {kubeconfig or '~/.kube/config'}: no contexts")
    return names


def _scan_clusters(request: Any, names: list[str], kubeconfig: Optional[str], namespaces: tuple[str, ...],
                   exclude: tuple[str, ...], timeout: float, progress: bool = True) -> tuple[list[Any], list[str]]:
    """Each context's report, and a message for each context that could not be scanned: one
    unreachable cluster must not cost the reports of the healthy ones. No names: in-cluster.
    `progress`: an updating line on standard error while each cluster is read, if it is a terminal."""
    from kaudit.scan import scan_cluster
    from kaudit.sources.cluster import ClusterRequest

    def one(name: Optional[str]) -> Any:
        cluster = ClusterRequest(kubeconfig=kubeconfig, context=name, in_cluster=name is None, namespaces=namespaces,
                                 exclude_namespaces=exclude, timeout=timeout, progress=progress)
        return scan_cluster(request, cluster)

    if len(names) <= 1:  # one cluster: its failure is the whole answer (exit 2, one line)
        return [one(names[0] if names else None)], []
    reports, failed = [], []
    for name in names:
        try:
            reports.append(one(name))
        except KauditError as error:
            message = str(error)
            failed.append(message if name in message else f"context {name}: {message}")
    return reports, failed


def _display(quiet: bool, verbose: bool, min_severity: Optional[str], color: Optional[str]) -> Any:
    """What the text and Markdown reports show (kaudit/writers/display.py); never what the gate counts."""
    from kaudit.model import Severity
    from kaudit.writers.display import Display

    if quiet and verbose:
        raise UsageError("-q/--quiet and -v/--verbose ask for opposite things: give one")
    return Display(verbose=verbose, quiet=quiet, color=color or "auto",
                   min_severity=Severity.parse(min_severity) if min_severity else Severity.INFO)


def _writers(destinations: list[tuple[str, Optional[str]]], display: Any = None) -> list[tuple[str, Any, Optional[str]]]:
    from kaudit.writers import get_writer

    if sum(1 for _, out in destinations if out is None or out == "-") > 1:
        raise UsageError("only one format can go to standard output; give the others -o FILE")
    return [(fmt.lower(), get_writer(fmt.lower(), display), out) for fmt, out in destinations]


def _write_all(report: Any, writers: list[tuple[str, Any, Optional[str]]], several: bool = False) -> None:
    """Write one report to every destination; with several reports (one per context), files get the
    context in their name (report.json -> report.prod.json)."""
    from contextlib import ExitStack

    context = report.coverage.context if several and report.coverage is not None else None
    with ExitStack() as stack:
        for fmt, write, out in writers:
            if out is None or out == "-":
                if context and fmt == "json":
                    write(report, _OneLine(sys.stdout))  # JSON Lines: one whole report per line
                    continue
                if context:
                    sys.stdout.write(f"== context {context} ==\n")
                write(report, sys.stdout)
                continue
            if context:
                stem, dot, suffix = out.rpartition(".")
                safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in context)
                out = f"{stem}.{safe}.{suffix}" if dot and stem else f"{out}.{safe}"
            try:
                stream: TextIO = stack.enter_context(open(out, "w", encoding="utf-8"))
            except OSError as error:
                raise KauditError(f"{out}: cannot write report: {error.strerror or error}") from None
            write(report, stream)


class _OneLine:
    """Standard output seen as a pipe, so the JSON writer writes each report on one line even on a
    terminal (several contexts make JSON Lines)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text)

    def isatty(self) -> bool:
        return False


def _with_config_rule_dirs(rule_dirs: tuple[str, ...], config: Optional[str]) -> tuple[str, ...]:
    """The config's rule-dirs (.kaudit.yaml found upward, or --config), then --rules: as scan loads them."""
    from kaudit.config import load_config

    return (*load_config(config).rule_dirs, *rule_dirs)


def rules_list(rule_dirs: tuple[str, ...], framework: Optional[str], config: Optional[str]) -> int:
    """List the rules (id, severity, category, title), or a framework's controls."""
    from kaudit.commands import list_framework, list_rules

    rule_dirs = _with_config_rule_dirs(rule_dirs, config)
    if framework:
        list_framework(framework, rule_dirs, sys.stdout)
    else:
        list_rules(rule_dirs, sys.stdout)
    return EXIT_OK


def rules_show(rule_id: str, rule_dirs: tuple[str, ...], config: Optional[str]) -> int:
    """Show a rule's documentation, frameworks and references."""
    from kaudit.commands import show_rule

    show_rule(rule_id, _with_config_rule_dirs(rule_dirs, config), sys.stdout)
    return EXIT_OK


def rules_new(rule_id: str, template: Optional[str], output: str) -> int:
    """Write a new rule file ID.yaml bound to a template: it validates as written; edit its TODOs,
    params and fixtures, then run `kaudit rules validate`."""
    from kaudit.rule_skeleton import skeleton

    if template is None:
        from kaudit.checks import TEMPLATES

        raise UsageError(f"--template is required: one of {', '.join(sorted(TEMPLATES))}")
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule_id):
        raise UsageError(f"rule id {rule_id!r} must be kebab-case (lower-case words joined by -), e.g. missing-team-label")
    text = skeleton(rule_id, template)
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, f"{rule_id}.yaml")
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise KauditError(f"{path}: already exists; not overwritten") from None
    print(f"wrote {path}")
    return EXIT_OK


def rules_schema(output: Optional[str]) -> int:
    """Print the JSON Schema of rule files (kaudit/schemas/rule.schema.json, docs/rule.schema.json)."""
    from kaudit.rule_schema import text

    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text())
    else:
        sys.stdout.write(text())
    return EXIT_OK


def rules_docs(output: Optional[str]) -> int:
    """Generate the Markdown reference of all built-in rules (docs/rules.md)."""
    from kaudit.docs import render
    from kaudit.ruleset import load_builtin_rules

    text = render(load_builtin_rules())
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def rules_compile() -> int:
    """Write rules/index.json, the pre-parsed built-in rules (for maintainers; a test checks it)."""
    from kaudit.paths import builtin_rules_dir
    from kaudit.ruleset import INDEX_NAME, compile_builtin_index

    (builtin_rules_dir() / INDEX_NAME).write_text(compile_builtin_index(), encoding="utf-8")
    return EXIT_OK


def rules_validate(directory: str) -> int:
    """Validate custom rule files in DIRECTORY: schema, params, and their own test fixtures."""
    from kaudit.commands import validate_rules

    return validate_rules(directory, sys.stdout)


def baseline_create(paths: tuple[str, ...], output: str, rule_dirs: tuple[str, ...], select: tuple[str, ...],
                    frameworks: tuple[str, ...], config: Optional[str], default_namespace: Optional[str],
                    **render: Any) -> int:
    """Scan PATHS and write the report as a baseline (a JSON report; commit it beside the manifests)."""
    import gc

    gc.disable()  # as in scan: one pass over large acyclic data
    from kaudit.scan import ScanRequest, scan_manifests
    from kaudit.writers.json_report import write

    namespace = _default_namespace((), default_namespace)
    report = scan_manifests(ScanRequest(targets=paths, rule_dirs=rule_dirs, select=select, frameworks=frameworks,
                                        config=config, fail_on="never", default_namespace=namespace,
                                        render=_render_request(render, namespace)))
    if not report.complete:
        from kaudit.writers.text import problem_lines

        for line in problem_lines(report):
            if not line.startswith("warning:"):
                print(line, file=sys.stderr)
        raise KauditError("the scan is incomplete; no baseline written (a baseline must cover every input)")
    try:
        with open(output, "w", encoding="utf-8") as stream:
            write(report, stream)
    except OSError as error:
        raise KauditError(f"{output}: cannot write baseline: {error.strerror or error}") from None
    print(f"baseline written to {output}: {len(report.active_findings)} findings "
          f"from {report.inputs.resources} resources")
    return EXIT_OK


def paths(paths: tuple[str, ...], sources: str, targets: tuple[str, ...], fmt: str, output: Optional[str],
          config: Optional[str], rule_dirs: tuple[str, ...], contexts: tuple[str, ...], kubeconfig: Optional[str],
          in_cluster: bool, namespaces: tuple[str, ...], exclude_namespaces: tuple[str, ...], allow_gaps: bool,
          request_timeout: float, default_namespace: Optional[str], max_file_size: Optional[float],
          **render: Any) -> int:
    """Attack paths: the shortest path from each entry point (--from any: from each workload too) to
    each crown jewel, step by step with evidence, and the fixes that cut the most paths. Exit 0: no
    path; 1: paths; 2: the scan could not see everything."""
    from kaudit.attack.model import CROWNS
    from kaudit.attack.output import write_json, write_text
    from kaudit.scan import ATTACK_RULE, ScanRequest, scan_manifests
    from kaudit.sources.manifests import DEFAULT_MAX_FILE_MB

    unknown = [t for t in targets if t not in CROWNS]
    if unknown:
        raise UsageError(f"--to {unknown[0]}: not a crown jewel (use one of: {', '.join(CROWNS)})")
    if fmt not in ("text", "json"):
        raise UsageError(f"-f {fmt}: kaudit paths writes text or json")
    cluster_mode = bool(contexts or in_cluster)
    if cluster_mode and paths:
        raise UsageError("read manifests (PATH...) or a cluster (--context / --in-cluster), not both")
    if len(contexts) > 1:
        raise UsageError("kaudit paths reads one cluster at a time: give one --context")
    namespace = None if cluster_mode else _default_namespace(namespaces, default_namespace)
    request = ScanRequest(targets=paths, render=_render_request(render, namespace), rule_dirs=rule_dirs,
                          config=config, select=(ATTACK_RULE,), fail_on="never", allow_gaps=allow_gaps,
                          max_file_mb=max_file_size or DEFAULT_MAX_FILE_MB, default_namespace=namespace,
                          attack_sources=sources, attack_targets=targets, jobs=1)
    if cluster_mode:
        reports, failed = _scan_clusters(request, [] if in_cluster else list(contexts), kubeconfig, namespaces,
                                         exclude_namespaces, request_timeout, progress=True)
        if failed:
            raise KauditError(failed[0])
        report = reports[0]
    else:
        report = scan_manifests(request)
    from kaudit.writers.json_report import to_dict
    from kaudit.writers.text import problem_lines

    for line in problem_lines(report):
        print(line, file=sys.stderr)
    try:
        stream = open(output, "w", encoding="utf-8") if output not in (None, "-") else sys.stdout
    except OSError as error:
        raise KauditError(f"{output}: cannot write: {error.strerror or error}") from None
    try:
        if fmt == "json":
            write_json(report.attack, stream, to_dict(report, findings=False)["inputs"])
        else:
            write_text(report.attack, stream)
    finally:
        if stream is not sys.stdout:
            stream.close()
    if not report.complete:
        return EXIT_ERROR
    return EXIT_FINDINGS if report.attack.paths else EXIT_OK


def rbac_who_can(verb: str, resource: str, paths: tuple[str, ...], namespace: Optional[str]) -> int:
    """Subjects that can VERB RESOURCE[.GROUP][/SUBRESOURCE], each with its binding path."""
    from kaudit.rbac_commands import who_can

    return who_can(verb, resource, namespace, paths, sys.stdout, sys.stderr)


def rbac_explain(subject: str, paths: tuple[str, ...]) -> int:
    """Effective permissions of SUBJECT (User:NAME, Group:NAME, ServiceAccount:NS:NAME)."""
    from kaudit.rbac_commands import explain

    return explain(subject, paths, sys.stdout, sys.stderr)


# ---- the parser -------------------------------------------------------------------------------------
# The tree of commands is declared up front, but a parser is built only for the node a command line
# reaches (a scan builds the scan parser alone): argparse is cheap to import, not to build 60 options.

class _Parser(argparse.ArgumentParser):
    """argparse that reports to main() instead of exiting, so main() stays the one exit point."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)

    def exit(self, status: int = 0, message: Optional[str] = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


@functools.cache
def _help_width() -> int:
    """The terminal's width, found as shutil.get_terminal_size finds it (shutil is a large import)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _Formatter(argparse.HelpFormatter):
    """Help with `-f, --format FORMAT` (not `-f FORMAT, --format FORMAT`), and a group's commands
    listed without argparse's `COMMAND` line above them."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=_help_width() - 2)

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):
            return "".join(self._format_action(command) for command in action._get_subactions())
        return super()._format_action(action)

    def _split_lines(self, text: str, width: int) -> list[str]:
        # never inside a hyphenated word: rule, template and option names stay whole (and greppable)
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{', '.join(action.option_strings)} {self._format_args(action, action.dest.upper())}"


class _Options:
    """Declares a command's arguments and options, one line each."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser
        self.takes_value: dict[str, str] = {}  # option string -> its long form, for options with a value
        self.has_arguments = False

    def arg(self, dest: str, many: bool = False) -> None:
        self.has_arguments = True
        if many:  # zero or more: a default makes argparse not require one
            self.parser.add_argument(dest, nargs="*", default=[], metavar=dest.upper(), help=argparse.SUPPRESS)
        else:
            self.parser.add_argument(dest, metavar=dest.upper(), help=argparse.SUPPRESS)

    def value(self, *flags: str, dest: Optional[str] = None, metavar: Optional[str] = None, help: str = "",
              type: Optional[Callable[[str], Any]] = None, default: Any = None, many: bool = False) -> None:
        long = next((flag for flag in flags if flag.startswith("--")), flags[0])
        self.takes_value.update({flag: long for flag in flags})
        settings: dict[str, Any] = {"type": type} if type else {}
        self.parser.add_argument(*flags, dest=dest or long.lstrip("-").replace("-", "_"), metavar=metavar,
                                 help=help, action="append" if many else "store", default=[] if many else default,
                                 **settings)

    def flag(self, *names: str, help: str) -> None:
        self.parser.add_argument(*names, action="store_true", help=help)


class _Node:
    """A group of commands (children) or a command (run, with `declare` for its options)."""

    def __init__(self, prog: str, doc: str, usage: str, run: Optional[Callable[..., int]] = None,
                 declare: Optional[Callable[[_Options], None]] = None, hidden: bool = False) -> None:
        self.prog, self.doc, self.usage, self.run, self.declare, self.hidden = prog, doc, usage, run, declare, hidden
        self.children: dict[str, _Node] = {}

    def group(self, name: str, doc: str) -> _Node:
        child = self.children[name] = _Node(f"{self.prog} {name}", doc, " COMMAND [ARGS]...")
        return child

    def command(self, name: str, run: Callable[..., int], usage: str,
                declare: Optional[Callable[[_Options], None]] = None, hidden: bool = False) -> None:
        self.children[name] = _Node(f"{self.prog} {name}", run.__doc__ or "", usage, run, declare, hidden)

    def listed(self) -> list[str]:
        return [name for name, child in self.children.items() if not child.hidden]

    def build(self) -> _Options:
        options = _Options(_Parser(prog=self.prog, usage=f"{self.prog} [OPTIONS]{self.usage}", description=self.doc,
                                   add_help=False, formatter_class=_Formatter, allow_abbrev=False))
        if self.prog == "kaudit":
            options.parser.add_argument("--version", action="version", version=f"kaudit, version {__version__}",
                                        help="Show the version and exit.")
        if self.children:  # for the help's list of commands; the walk in _run() dispatches
            commands = options.parser.add_subparsers(title="commands", metavar="COMMAND")
            for name in self.listed():
                commands.add_parser(name, help=self.children[name].doc, add_help=False)
        if self.declare:
            self.declare(options)
        options.parser.add_argument("-h", "--help", action="help", help="Show this message and exit.")
        return options

    def parse(self, args: Sequence[str]) -> dict[str, Any]:
        """The command's keyword arguments. Options and arguments may come in any order, and `--`
        ends the options."""
        built = self.build()
        options, positionals = _options_first(args, built.takes_value)
        if positionals and not built.has_arguments:
            built.parser.error(f"unrecognized arguments: {' '.join(positionals)}")
        namespace = built.parser.parse_args([*options, "--", *positionals] if positionals else options)
        return {key: tuple(value) if isinstance(value, list) else value for key, value in vars(namespace).items()}


def _options_first(args: Sequence[str], takes_value: dict[str, str]) -> tuple[list[str], list[str]]:
    """Split options (each with its value, as --long=VALUE so that a value may start with '-') from
    positional arguments: argparse alone takes no path after an option that follows a path
    (`scan a.yaml --fail-on never b.yaml`), and its intermixed mode mishandles `--`."""
    options: list[str] = []
    positionals: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positionals.extend(args[index:])
            break
        if arg == "-" or not arg.startswith("-"):
            positionals.append(arg)
            continue
        if arg.startswith("--"):
            name, equals, inline = arg.partition("=")
            has_inline = bool(equals)
        else:
            name, inline, has_inline = arg[:2], arg[2:], len(arg) > 2
        long = takes_value.get(name)
        if long is None:  # a flag, -h, or an unknown option: argparse judges it
            options.append(arg)
        elif has_inline:
            options.append(f"{long}={inline}")
        elif index < len(args):
            options.append(f"{long}={args[index]}")
            index += 1
        else:
            options.append(arg)  # its value is missing: argparse says so
    return options, positionals


def _choice(choices: list[str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text.lower() not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        return text.lower()

    return check


def _at_least(kind: Callable[[str], Any], minimum: float) -> Callable[[str], Any]:
    def check(text: str) -> Any:
        try:
            number = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {'integer' if kind is int else 'number'}")
        if not number >= minimum:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text} is not in the range x>={minimum}")
        return number

    return check


def _scan_options(c: _Options) -> None:
    c.arg("paths", many=True)
    c.value("--fail-on", metavar=f"[{'|'.join(FAIL_ON_CHOICES)}]", type=_choice(FAIL_ON_CHOICES),
            help="Exit 1 when a finding is at or above this severity (default: high, or the config's).")
    c.value("--rules", dest="rule_dirs", many=True, metavar="DIR", help="Load custom rules from DIR (repeatable).")
    c.value("--rule", dest="select", many=True, metavar="ID", help="Run only this rule (repeatable).")
    c.value("--framework", dest="frameworks", many=True, metavar="NAME",
            help="Run only the rules that check this framework's controls: pss-baseline, pss-restricted, cis, nsa. "
                 "pss-…@v1.25 (or @latest) judges every pod at that Pod Security version, whatever its "
                 "namespace pins.")
    c.value("--config", metavar="FILE", help="Config file (default: .kaudit.yaml found upward from here).")
    c.value("--baseline", metavar="FILE",
            help="An earlier JSON report (kaudit baseline create): only findings not in it fail the gate.")
    c.value("-f", "--format", dest="formats", many=True, metavar="FORMAT",
            help="Output format: text, json, html, sarif, junit or markdown (repeatable, each optionally "
                 "followed by -o FILE).")
    c.value("-o", "--output", dest="outputs", many=True, metavar="FILE", help="Write the preceding -f to FILE.")
    c.flag("-q", "--quiet", help="Text: print only errors and the verdict line.")
    c.flag("-v", "--verbose", help="Text and Markdown: whole messages, the rules joined to each finding, where "
                                   "rendered values came from, and the framework controls line.")
    c.value("--min-severity", metavar=f"[{'|'.join(FAIL_ON_CHOICES[:-1])}]", type=_choice(FAIL_ON_CHOICES[:-1]),
            help="Text and Markdown: list only findings at or above this severity (the others are counted). "
                 "Display only: the gate is --fail-on.")
    c.value("--color", metavar="[auto|always|never]", type=_choice(["auto", "always", "never"]),
            help="Colour the text report: auto (default) colours a terminal unless NO_COLOR is set, or "
                 "anything when FORCE_COLOR is; always and never override both.")
    c.value("--max-file-size", type=_at_least(float, 0.001), metavar="MIB",
            help="Refuse manifest files larger than this (default: 32 MiB). [x>=0.001]")
    c.value("--context", dest="contexts", many=True, metavar="CTX",
            help="Scan the live cluster of this kubeconfig context (repeatable; each reported separately).")
    c.flag("--all-contexts", help="Scan every context of the kubeconfig, each separately.")
    c.value("--kubeconfig", metavar="FILE", help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
    c.flag("--in-cluster", help="Scan the cluster kaudit runs in (its pod's service account).")
    c.value("-n", "--namespace", dest="namespaces", many=True, metavar="NS",
            help="Cluster scans: only these namespaces (repeatable; default all). Manifest scans: one "
                 "namespace, the same as --default-namespace.")
    c.value("--default-namespace", metavar="NS",
            help="Manifest scans: put every namespaced object that names no namespace in NS, as "
                 "`kubectl apply -n NS` does. Without it, such objects are grouped by folder (one "
                 "folder, or standard input, is applied to one namespace) and never pooled across folders.")
    c.value("--exclude-namespace", dest="exclude_namespaces", many=True, metavar="NS",
            help="Cluster scans: skip this namespace (repeatable).")
    c.flag("--allow-gaps", help="Coverage gaps (cluster reads forbidden or failed, registries unreachable) are "
                                "reported but do not exit 2.")
    c.value("--request-timeout", type=_at_least(float, 0.1), default=20.0, metavar="SECONDS",
            help="Cluster scans: timeout of each API request (retried, then a gap). [default: 20.0; x>=0.1]")
    c.flag("--verify-images",
           help="Resolve every image's digest and verify its cosign signature with the trusted keys (network).")
    c.value("--cosign-key", dest="cosign_keys", many=True, metavar="FILE",
            help="A trusted cosign public key (PEM; repeatable). Per-registry keys: config image-signatures.")
    c.flag("--resolve-digests", help="Report the digest each tag-only image points to now, so it can be pinned "
                                     "(network).")
    c.value("--registry-config", metavar="FILE", help="Docker config.json with registry credentials "
            "(default ~/.docker/config.json); each credential is used only for its own registry.")
    c.value("--registry-ca", metavar="FILE", help="CA bundle for registries with a private CA.")
    c.value("--insecure-registry", dest="insecure_registries", many=True, metavar="HOST[:PORT]",
            help="Reach this registry over plain HTTP (repeatable).")
    c.value("--image-cache", metavar="FILE",
            help="Where image results are cached (default ~/.cache/kaudit/images.json).")
    c.value("--image-cache-ttl", type=_at_least(int, 0), metavar="SECONDS",
            help="Reuse image results cached on disk for this long (default 3600; 0: no cache). [x>=0]")
    c.value("-j", "--jobs", type=_at_least(int, 0), default=0, metavar="N",
            help="Processes for large manifest scans (default 0: one per core; 1: no worker processes). [x>=0]")
    c.flag("--allow-empty", help="Inputs that hold no Kubernetes object may pass (default: exit 2, nothing was "
                                 "judged). The pre-commit hooks pass it, so a commit of other YAML is not blocked.")
    c.flag("--per-file", help="Judge objects on their own: skip cross-object analysis (NetworkPolicy coverage, "
                              "RBAC paths), which needs every manifest, not just the files given (pre-commit).")
    c.flag("--cross-object-only", help="Only the cross-object analysis --per-file skips, on the whole tree: the "
                                       "other half of a --per-file run, so the two report no fact twice "
                                       "(the kaudit-all pre-commit hook).")
    c.flag("--include-platform", help="Also report findings on platform defaults: objects identical to "
                                      "Kubernetes' bootstrap RBAC policy and to the objects the control plane "
                                      "creates (counted, not reported, by default).")
    _render_options(c)


def _render_options(c: _Options) -> None:
    """Helm charts and kustomizations in the paths are rendered (see README, Helm and Kustomize)."""
    c.value("--helm-values", dest="helm_values", many=True, metavar="FILE",
            help="Helm values file for the charts scanned (repeatable, merged in order, as helm -f).")
    c.value("--helm-set", dest="helm_set", many=True, metavar="KEY=VALUE",
            help="Set a Helm value over the values files (repeatable, as helm --set).")
    c.value("--helm-release", metavar="NAME", help="Release name the charts render with (default: release-name).")
    c.value("--helm-namespace", metavar="NS",
            help="Namespace the charts are installed into: .Release.Namespace, and the namespace of every "
                 "object that names none (default: -n, else objects keep no namespace).")
    c.value("--kube-version", metavar="VERSION", help="Kubernetes version the charts see (.Capabilities.KubeVersion).")
    c.value("--api-versions", dest="api_versions", many=True, metavar="GROUP/VERSION",
            help="An API version the charts see as available (.Capabilities.APIVersions; repeatable).")
    c.flag("--helm-dependency-update", help="Download chart dependencies missing from charts/ (network); "
                                           "without it a missing dependency is an error.")
    c.value("--helm-renderer", metavar="[helm-python-sdk|helm-binary]", type=_choice(["helm-python-sdk", "helm-binary"]),
            help="Render charts with this engine (default: the SDK extra, else helm on PATH).")
    c.flag("--kustomize-allow-remote", help="Let kustomize fetch remote bases (network); without it a "
                                            "remote base is an error.")
    c.flag("--no-values-trace", help="Do not look for the values key behind a finding in a chart (saves the "
                                     "extra renders).")


_RULES_CONFIG_HELP = "Config file whose rule-dirs are included (default: .kaudit.yaml found upward from here)."


def _rules_list_options(c: _Options) -> None:
    c.value("--rules", dest="rule_dirs", many=True, metavar="DIR", help="Include custom rules from DIR.")
    c.value("--framework", metavar="NAME", help="List this framework's controls and the rules that check them.")
    c.value("--config", metavar="FILE", help=_RULES_CONFIG_HELP)


def _rules_show_options(c: _Options) -> None:
    c.arg("rule_id")
    c.value("--rules", dest="rule_dirs", many=True, metavar="DIR", help="Include custom rules from DIR.")
    c.value("--config", metavar="FILE", help=_RULES_CONFIG_HELP)


def _rules_new_options(c: _Options) -> None:
    from kaudit.checks import TEMPLATES  # only when `rules new` is asked for

    c.arg("rule_id")
    c.value("-t", "--template", metavar="TEMPLATE", type=_template_choice,
            help="The check logic the rule binds (required): " + ", ".join(sorted(TEMPLATES)) + ".")
    c.value("-o", "--output", default=".", metavar="DIR", help="Write DIR/ID.yaml. [default: .]")


def _template_choice(text: str) -> str:
    from kaudit.checks import TEMPLATES
    from kaudit.rule_skeleton import unknown_template_message

    if text not in TEMPLATES:
        raise argparse.ArgumentTypeError(unknown_template_message(text))
    return text


def _rules_schema_options(c: _Options) -> None:
    c.value("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")


def _rules_docs_options(c: _Options) -> None:
    c.value("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")


def _rules_validate_options(c: _Options) -> None:
    c.arg("directory")


def _baseline_create_options(c: _Options) -> None:
    c.arg("paths", many=True)
    c.value("-o", "--output", default=".kaudit-baseline.json", metavar="FILE", help="[default: .kaudit-baseline.json]")
    c.value("--rules", dest="rule_dirs", many=True, metavar="DIR", help="Load custom rules from DIR.")
    c.value("--rule", dest="select", many=True, metavar="ID", help="Only this rule (repeatable).")
    c.value("--framework", dest="frameworks", many=True, metavar="NAME", help="Only this framework's rules.")
    c.value("--config", metavar="FILE", help="Config file (default: .kaudit.yaml found upward from here).")
    c.value("-n", "--default-namespace", metavar="NS",
            help="Put objects that name no namespace in NS, as the scans this baseline is for do (scan -n NS).")
    _render_options(c)


def _paths_options(c: _Options) -> None:
    c.arg("paths", many=True)
    c.value("--from", dest="sources", default="entry", metavar="[entry|any]", type=_choice(["entry", "any"]),
            help="Start at the entry points (default: exposed Services, Ingresses and routes, host ports), or at "
                 "any workload too (an attacker already inside one).")
    c.value("--to", dest="targets", many=True, metavar="CROWN",
            help="Only paths to this crown jewel (repeatable): cluster-admin, pods-in-kube-system, "
                 "secrets-in-kube-system, nodes-proxy, csr-signing (default: all).")
    c.value("-f", "--format", dest="fmt", default="text", metavar="[text|json]",
            help="text: numbered steps with evidence; json: the paths, choke points and the whole graph "
                 "(nodes, edges, evidence) for other tools.")
    c.value("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output.")
    c.value("--config", metavar="FILE", help="Config file (default: .kaudit.yaml found upward from here).")
    c.value("--rules", dest="rule_dirs", many=True, metavar="DIR", help="Load custom rules from DIR (repeatable).")
    c.value("--context", dest="contexts", many=True, metavar="CTX", help="Read the live cluster of this context.")
    c.value("--kubeconfig", metavar="FILE", help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
    c.flag("--in-cluster", help="Read the cluster kaudit runs in (its pod's service account).")
    c.value("-n", "--namespace", dest="namespaces", many=True, metavar="NS",
            help="Cluster: only these namespaces (paths through others are then not seen). Manifests: "
                 "the namespace of objects that name none.")
    c.value("--default-namespace", metavar="NS", help="Manifests: the namespace of objects that name none.")
    c.value("--exclude-namespace", dest="exclude_namespaces", many=True, metavar="NS",
            help="Cluster: skip this namespace (repeatable).")
    c.flag("--allow-gaps", help="Cluster reads that were forbidden or failed are reported but do not exit 2.")
    c.value("--request-timeout", type=_at_least(float, 0.1), default=20.0, metavar="SECONDS",
            help="Cluster: timeout of each API request. [default: 20.0; x>=0.1]")
    c.value("--max-file-size", type=_at_least(float, 0.001), metavar="MIB",
            help="Refuse manifest files larger than this (default: 32 MiB). [x>=0.001]")
    _render_options(c)


def _rbac_who_can_options(c: _Options) -> None:
    c.arg("verb")
    c.arg("resource")
    c.arg("paths", many=True)
    c.value("-n", "--namespace", metavar="NS",
            help="Only grants that apply in this namespace (cluster-wide ones always do).")


def _rbac_explain_options(c: _Options) -> None:
    c.arg("subject")
    c.arg("paths", many=True)


def _tree() -> _Node:
    root = _Node("kaudit", "Audit the security posture of Kubernetes manifests and clusters.", " COMMAND [ARGS]...")
    root.command("scan", scan, " [PATHS]...", _scan_options)
    root.command("paths", paths, " [PATHS]...", _paths_options)
    rules = root.group("rules", "List, show, write and validate rules.")
    rules.command("list", rules_list, "", _rules_list_options)
    rules.command("show", rules_show, " RULE_ID", _rules_show_options)
    rules.command("new", rules_new, " RULE_ID --template TEMPLATE", _rules_new_options)
    rules.command("validate", rules_validate, " DIRECTORY", _rules_validate_options)
    rules.command("schema", rules_schema, "", _rules_schema_options)
    rules.command("docs", rules_docs, "", _rules_docs_options)
    rules.command("compile", rules_compile, "", hidden=True)
    baseline = root.group("baseline", "Record the current findings so that only new ones fail the gate.")
    baseline.command("create", baseline_create, " [PATHS]...", _baseline_create_options)
    rbac = root.group("rbac", "Ask RBAC questions of manifests: who can do something, and what a subject can do.")
    rbac.command("who-can", rbac_who_can, " VERB RESOURCE [PATHS]...", _rbac_who_can_options)
    rbac.command("explain", rbac_explain, " SUBJECT [PATHS]...", _rbac_explain_options)
    return root


def _run(argv: Sequence[str]) -> int:
    """Walk the command tree (a group takes only -h, and kaudit --version, before its command's
    name), then parse the command's arguments and run it."""
    node = _tree()
    args = list(argv)
    while node.run is None:
        index = next((i for i, arg in enumerate(args) if arg == "-" or not arg.startswith("-")), len(args))
        if index > 0 or index == len(args):
            node.build().parser.parse_args(args[:index])  # -h, --version, or an unknown option
        if index == len(args):  # no command: the group's help, as a usage error
            node.build().parser.print_help(sys.stderr)
            return EXIT_ERROR
        name = args[index]
        if name not in node.children:
            raise UsageError(f"no such command {name!r} (commands: {', '.join(node.listed())})", node.prog)
        node, args = node.children[name], args[index + 1:]
    values = node.parse(args)
    if node.run is scan:  # -f/-o pair by their order on the command line
        values["raw_args"] = args
    try:
        return node.run(**values)
    except UsageError as error:
        error.prog = error.prog or node.prog
        raise


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except _Exit as done:
        return done.code
    except (KeyboardInterrupt, EOFError):
        print("kaudit: aborted", file=sys.stderr)
        return EXIT_ERROR
    except UsageError as error:
        print(f"{error.prog or 'kaudit'}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KauditError as error:
        print(f"kaudit: {error}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `kaudit scan … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # a bug: one line, and the traceback only on request
        if os.environ.get("KAUDIT_DEBUG"):
            raise
        print(f"kaudit: internal error: {type(error).__name__}: {error} "
              "(set KAUDIT_DEBUG=1 for a traceback, and please report it)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
