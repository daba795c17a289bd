"""Command line: parse options, call one function, map the result to an exit code.

Exit codes: 0 nothing at or above --fail-on; 1 findings at or above it; 2 kaudit could not do what
was asked (bad usage or config, unreadable or malformed input, a rule that could not run).
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import ExitStack
from typing import Any, Optional, Sequence, TextIO

import click

from kaudit import __version__
from kaudit.errors import KauditError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
FAIL_ON_CHOICES = ["critical", "high", "medium", "low", "info", "never"]


class _OutputPairing(click.Command):
    """Remember the order of -f/-o so that each -o belongs to the -f before it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["kaudit.outputs"] = _pair_outputs(args)
        return super().parse_args(ctx, args)


def _pair_outputs(args: Sequence[str]) -> list[tuple[str, Optional[str]]]:
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
        raise click.UsageError("-o/--output must follow the -f/--format it is for: -f json -o report.json")
    return [(fmt, out) for fmt, out in pairs]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kaudit")
def cli() -> None:
    """Audit the security posture of Kubernetes manifests and clusters."""


@cli.command(cls=_OutputPairing)
@click.argument("paths", nargs=-1)
@click.option("--fail-on", type=click.Choice(FAIL_ON_CHOICES, case_sensitive=False), default=None,
              help="Exit 1 when a finding is at or above this severity (default: high, or the config's).")
@click.option("--rules", "rule_dirs", multiple=True, metavar="DIR", help="Load custom rules from DIR (repeatable).")
@click.option("--rule", "select", multiple=True, metavar="ID", help="Run only this rule (repeatable).")
@click.option("--framework", "frameworks", multiple=True, metavar="NAME",
              help="Run only the rules that check this framework's controls: pss-baseline, pss-restricted, cis, nsa. "
                   "pss-…@v1.25 (or @latest) judges every pod at that Pod Security version, whatever its "
                   "namespace pins.")
@click.option("--config", metavar="FILE", help="Config file (default: .kaudit.yaml found upward from here).")
@click.option("--baseline", metavar="FILE",
              help="An earlier JSON report (kaudit baseline create): only findings not in it fail the gate.")
@click.option("-f", "--format", "formats", multiple=True, metavar="FORMAT",
              help="Output format: text, json, html, sarif, junit or markdown (repeatable, each optionally "
                   "followed by -o FILE).")
@click.option("-o", "--output", "outputs", multiple=True, metavar="FILE", help="Write the preceding -f to FILE.")
@click.option("--max-file-size", type=click.FloatRange(min=0.001), default=None, metavar="MIB",
              help="Refuse manifest files larger than this (default: 32 MiB).")
@click.option("--context", "contexts", multiple=True, metavar="CTX",
              help="Scan the live cluster of this kubeconfig context (repeatable; each reported separately).")
@click.option("--all-contexts", is_flag=True, help="Scan every context of the kubeconfig, each separately.")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
@click.option("--in-cluster", is_flag=True, help="Scan the cluster kaudit runs in (its pod's service account).")
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS",
              help="Cluster scans: only these namespaces (repeatable; default all). Manifest scans: one "
                   "namespace, the same as --default-namespace.")
@click.option("--default-namespace", metavar="NS",
              help="Manifest scans: put every namespaced object that names no namespace in NS, as "
                   "`kubectl apply -n NS` does. Without it, such objects are grouped by folder (one "
                   "folder, or standard input, is applied to one namespace) and never pooled across folders.")
@click.option("--exclude-namespace", "exclude_namespaces", multiple=True, metavar="NS",
              help="Cluster scans: skip this namespace (repeatable).")
@click.option("--allow-gaps", is_flag=True,
              help="Coverage gaps (cluster reads forbidden or failed, registries unreachable) are reported "
                   "but do not exit 2.")
@click.option("--request-timeout", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              metavar="SECONDS", help="Cluster scans: timeout of each API request (retried, then a gap).")
@click.option("--verify-images", is_flag=True,
              help="Resolve every image's digest and verify its cosign signature with the trusted keys (network).")
@click.option("--cosign-key", "cosign_keys", multiple=True, metavar="FILE",
              help="A trusted cosign public key (PEM; repeatable). Per-registry keys: config image-signatures.")
@click.option("--resolve-digests", is_flag=True,
              help="Report the digest each tag-only image points to now, so it can be pinned (network).")
@click.option("--registry-config", metavar="FILE", help="Docker config.json with registry credentials "
              "(default ~/.docker/config.json); each credential is used only for its own registry.")
@click.option("--registry-ca", metavar="FILE", help="CA bundle for registries with a private CA.")
@click.option("--insecure-registry", "insecure_registries", multiple=True, metavar="HOST[:PORT]",
              help="Reach this registry over plain HTTP (repeatable).")
@click.option("--image-cache", metavar="FILE", help="Where image results are cached (default ~/.cache/kaudit/images.json).")
@click.option("--image-cache-ttl", type=click.IntRange(min=0), default=None, metavar="SECONDS",
              help="Reuse image results cached on disk for this long (default 3600; 0: no cache).")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, metavar="N",
              help="Processes for large manifest scans (default 0: one per core; 1: no worker processes).")
@click.option("--allow-empty", is_flag=True,
              help="Inputs that hold no Kubernetes object may pass (default: exit 2, nothing was judged). "
                   "The pre-commit hooks pass it, so a commit of other YAML is not blocked.")
@click.option("--per-file", is_flag=True,
              help="Judge objects on their own: skip cross-object analysis (NetworkPolicy coverage, RBAC "
                   "paths), which needs every manifest, not just the files given (pre-commit).")
@click.option("--include-platform", is_flag=True,
              help="Also report findings on platform defaults: objects identical to Kubernetes' bootstrap RBAC "
                   "policy and to the objects the control plane creates (counted, not reported, by default).")
@click.pass_context
def scan(ctx: click.Context, paths: tuple[str, ...], fail_on: Optional[str], rule_dirs: tuple[str, ...],
         select: tuple[str, ...], frameworks: tuple[str, ...], config: Optional[str], baseline: Optional[str],
         formats: tuple[str, ...], outputs: tuple[str, ...],
         max_file_size: Optional[float], per_file: bool, contexts: tuple[str, ...], all_contexts: bool,
         kubeconfig: Optional[str], in_cluster: bool, namespaces: tuple[str, ...],
         exclude_namespaces: tuple[str, ...], allow_gaps: bool, request_timeout: float, verify_images: bool,
         cosign_keys: tuple[str, ...], resolve_digests: bool, registry_config: Optional[str],
         registry_ca: Optional[str], insecure_registries: tuple[str, ...], image_cache: Optional[str],
         image_cache_ttl: Optional[int], jobs: int, allow_empty: bool, include_platform: bool,
         default_namespace: Optional[str]) -> None:
    """Scan manifests (files, directories, globs, '-' for stdin) or a live cluster (--context)."""
    import gc

    # A scan is one short pass that builds large acyclic structures (parsed objects, findings, the
    # report) and exits: the cyclic collector would only re-traverse them, at up to half the
    # report-building time on big trees. Reference counting still frees everything.
    gc.disable()
    from kaudit.scan import ScanRequest, scan_manifests
    from kaudit.sources.manifests import DEFAULT_MAX_FILE_MB

    destinations = ctx.meta["kaudit.outputs"] or [("text", None)]
    cluster_mode = bool(contexts or all_contexts or in_cluster)
    if cluster_mode and default_namespace is not None:
        raise click.UsageError("--default-namespace is for manifest scans (PATH...); with --context, -n selects "
                               "namespaces")
    request = ScanRequest(
        targets=paths, rule_dirs=rule_dirs, fail_on=fail_on.lower() if fail_on else None, config=config,
        select=select, frameworks=frameworks, baseline=baseline, max_file_mb=max_file_size or DEFAULT_MAX_FILE_MB,
        per_file=per_file, allow_gaps=allow_gaps, jobs=jobs, allow_empty=allow_empty,
        include_platform=include_platform,
        default_namespace=None if cluster_mode else _default_namespace(namespaces, default_namespace),
        images=_image_request(verify_images, cosign_keys, resolve_digests, registry_config, registry_ca,
                              insecure_registries, image_cache, image_cache_ttl, config),
    )
    writers = _writers(destinations)  # unknown formats fail before the scan runs
    if cluster_mode and paths:
        raise click.UsageError("scan manifests (PATH...) or a cluster (--context / --in-cluster), not both")
    if not cluster_mode and (exclude_namespaces or kubeconfig):
        raise click.UsageError("--exclude-namespace and --kubeconfig need --context or --in-cluster")
    failed: list[str] = []
    if not cluster_mode:
        reports = [scan_manifests(request)]
    else:
        names = [] if in_cluster else _context_names(contexts, all_contexts, kubeconfig)
        if len(names) > 1 and any(out in (None, "-") and fmt.lower() in SINGLE_DOCUMENT_FORMATS
                                  for fmt, out in destinations):
            raise click.UsageError("with several contexts, html, sarif and junit reports need -o FILE "
                                   "(one file per context); json on standard output is one report per line")
        reports, failed = _scan_clusters(request, names, kubeconfig, namespaces, exclude_namespaces, request_timeout)
    several = len(reports) + len(failed) > 1
    for report in reports:
        _write_all(report, writers, several=several)
        if not any(out in (None, "-") and fmt.lower() == "text" for fmt, out in destinations):
            _tell_stderr(report, several)  # nobody reads a text report: errors and the verdict still show
    for message in failed:
        click.echo(f"kaudit: {message}", err=True)
    codes = [_exit_code(report) for report in reports] + [EXIT_ERROR for _ in failed]
    ctx.exit(max(codes))


SINGLE_DOCUMENT_FORMATS = ("html", "sarif", "junit")
_NAMESPACE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # an RFC 1123 label, as the API requires


def _default_namespace(namespaces: tuple[str, ...], default_namespace: Optional[str]) -> Optional[str]:
    """The one namespace a manifest scan puts objects without one in (-n or --default-namespace)."""
    given = list(dict.fromkeys([*namespaces, *([default_namespace] if default_namespace is not None else [])]))
    if not given:
        return None
    if len(given) > 1:
        raise click.UsageError(f"a manifest scan takes one namespace, as `kubectl apply -n` does (given: "
                               f"{', '.join(given)}); scan each namespace's manifests apart")
    if not _NAMESPACE_NAME.match(given[0]):
        raise click.UsageError(f"-n {given[0]!r}: not a namespace name (at most 63 lowercase letters, digits "
                               "and '-', starting and ending with a letter or digit)")
    return given[0]


def _tell_stderr(report: Any, several: bool) -> None:
    """What the text report would have shown a person: errors, gaps and the one-line verdict."""
    from kaudit.writers.text import problem_lines, summary_line

    prefix = f"[{report.coverage.context}] " if several and report.coverage is not None else ""
    for line in problem_lines(report):
        click.echo(prefix + line, err=True)
    click.echo(prefix + summary_line(report), err=True)


def _image_request(verify: bool, key_files: tuple[str, ...], resolve: bool, registry_config: Optional[str],
                   ca: Optional[str], insecure: tuple[str, ...], cache: Optional[str], ttl: Optional[int],
                   config_path: Optional[str]) -> Any:
    """Image checks from flags and the config's `image-signatures`; None when nothing asks for them."""
    if not (verify or resolve):
        if key_files:
            raise click.UsageError("--cosign-key needs --verify-images")
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
                   exclude: tuple[str, ...], timeout: float) -> tuple[list[Any], list[str]]:
    """Each context's report, and a message for each context that could not be scanned: one
    unreachable cluster must not cost the reports of the healthy ones. No names: in-cluster."""
    from kaudit.scan import scan_cluster
    from kaudit.sources.cluster import ClusterRequest

    def one(name: Optional[str]) -> Any:
        cluster = ClusterRequest(kubeconfig=kubeconfig, context=name, in_cluster=name is None, namespaces=namespaces,
                                 exclude_namespaces=exclude, timeout=timeout)
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


def _writers(destinations: list[tuple[str, Optional[str]]]) -> list[tuple[str, Any, Optional[str]]]:
    from kaudit.writers import get_writer

    if sum(1 for _, out in destinations if out is None or out == "-") > 1:
        raise click.UsageError("only one format can go to standard output; give the others -o FILE")
    return [(fmt.lower(), get_writer(fmt.lower()), out) for fmt, out in destinations]


def _write_all(report: Any, writers: list[tuple[str, Any, Optional[str]]], several: bool = False) -> None:
    """Write one report to every destination; with several reports (one per context), files get the
    context in their name (report.json -> report.prod.json)."""
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


@cli.group()
def rules() -> None:
    """List, show and validate rules."""


@rules.command("list")
@click.option("--rules", "rule_dirs", multiple=True, metavar="DIR", help="Include custom rules from DIR.")
@click.option("--framework", metavar="NAME", help="List this framework's controls and the rules that check them.")
def rules_list(rule_dirs: tuple[str, ...], framework: Optional[str]) -> None:
    """List the rules (id, severity, category, title), or a framework's controls."""
    from kaudit.commands import list_framework, list_rules

    if framework:
        list_framework(framework, rule_dirs, sys.stdout)
    else:
        list_rules(rule_dirs, sys.stdout)


@rules.command("show")
@click.argument("rule_id")
@click.option("--rules", "rule_dirs", multiple=True, metavar="DIR", help="Include custom rules from DIR.")
def rules_show(rule_id: str, rule_dirs: tuple[str, ...]) -> None:
    """Show a rule's documentation, frameworks and references."""
    from kaudit.commands import show_rule

    show_rule(rule_id, rule_dirs, sys.stdout)


@rules.command("docs")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
def rules_docs(output: Optional[str]) -> None:
    """Generate the Markdown reference of all built-in rules (docs/rules.md)."""
    from kaudit.docs import render
    from kaudit.ruleset import load_builtin_rules

    text = render(load_builtin_rules())
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


@rules.command("compile", hidden=True)
def rules_compile() -> None:
    """Write rules/index.json, the pre-parsed built-in rules (for maintainers; a test checks it)."""
    from kaudit.paths import builtin_rules_dir
    from kaudit.ruleset import INDEX_NAME, compile_builtin_index

    (builtin_rules_dir() / INDEX_NAME).write_text(compile_builtin_index(), encoding="utf-8")


@rules.command("validate")
@click.argument("directory")
@click.pass_context
def rules_validate(ctx: click.Context, directory: str) -> None:
    """Validate custom rule files in DIRECTORY: schema, params, and their own test fixtures."""
    from kaudit.commands import validate_rules

    ctx.exit(validate_rules(directory, sys.stdout))


@cli.group()
def baseline() -> None:
    """Record the current findings so that only new ones fail the gate."""


@baseline.command("create")
@click.argument("paths", nargs=-1)
@click.option("-o", "--output", default=".kaudit-baseline.json", show_default=True, metavar="FILE")
@click.option("--rules", "rule_dirs", multiple=True, metavar="DIR", help="Load custom rules from DIR.")
@click.option("--rule", "select", multiple=True, metavar="ID", help="Only this rule (repeatable).")
@click.option("--framework", "frameworks", multiple=True, metavar="NAME", help="Only this framework's rules.")
@click.option("--config", metavar="FILE", help="Config file (default: .kaudit.yaml found upward from here).")
@click.option("-n", "--default-namespace", metavar="NS",
              help="Put objects that name no namespace in NS, as the scans this baseline is for do (scan -n NS).")
@click.pass_context
def baseline_create(ctx: click.Context, paths: tuple[str, ...], output: str, rule_dirs: tuple[str, ...],
                    select: tuple[str, ...], frameworks: tuple[str, ...], config: Optional[str],
                    default_namespace: Optional[str]) -> None:
    """Scan PATHS and write the report as a baseline (a JSON report; commit it beside the manifests)."""
    import gc

    gc.disable()  # as in scan: one pass over large acyclic data
    from kaudit.scan import ScanRequest, scan_manifests
    from kaudit.writers.json_report import write

    report = scan_manifests(ScanRequest(targets=paths, rule_dirs=rule_dirs, select=select, frameworks=frameworks,
                                        config=config, fail_on="never",
                                        default_namespace=_default_namespace((), default_namespace)))
    if not report.complete:
        from kaudit.writers.text import problem_lines

        for line in problem_lines(report):
            if not line.startswith("warning:"):
                click.echo(line, err=True)
        raise KauditError("the scan is incomplete; no baseline written (a baseline must cover every input)")
    try:
        with open(output, "w", encoding="utf-8") as stream:
            write(report, stream)
    except OSError as error:
        raise KauditError(f"{output}: cannot write baseline: {error.strerror or error}") from None
    click.echo(f"baseline written to {output}: {len(report.active_findings)} findings "
               f"from {report.inputs.resources} resources")


@cli.group()
def rbac() -> None:
    """Ask RBAC questions of manifests: who can do something, and what a subject can do."""


@rbac.command("who-can")
@click.argument("verb")
@click.argument("resource")
@click.argument("paths", nargs=-1)
@click.option("-n", "--namespace", help="Only grants that apply in this namespace (cluster-wide ones always do).")
@click.pass_context
def rbac_who_can(ctx: click.Context, verb: str, resource: str, paths: tuple[str, ...],
                 namespace: Optional[str]) -> None:
    """Subjects that can VERB RESOURCE[.GROUP][/SUBRESOURCE], each with its binding path."""
    from kaudit.rbac_commands import who_can

    ctx.exit(who_can(verb, resource, namespace, paths, sys.stdout, sys.stderr))


@rbac.command("explain")
@click.argument("subject")
@click.argument("paths", nargs=-1)
@click.pass_context
def rbac_explain(ctx: click.Context, subject: str, paths: tuple[str, ...]) -> None:
    """Effective permissions of SUBJECT (User:NAME, Group:NAME, ServiceAccount:NS:NAME)."""
    from kaudit.rbac_commands import explain

    ctx.exit(explain(subject, paths, sys.stdout, sys.stderr))


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="kaudit", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.Abort:
        click.echo("kaudit: aborted", err=True)
        return EXIT_ERROR
    except click.ClickException as error:
        error.show()
        return EXIT_ERROR
    except KauditError as error:
        click.echo(f"kaudit: {error}", err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        # `kaudit scan … | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # a bug: one line, and the traceback only on request
        if os.environ.get("KAUDIT_DEBUG"):
            raise
        click.echo(f"kaudit: internal error: {type(error).__name__}: {error} "
                   "(set KAUDIT_DEBUG=1 for a traceback, and please report it)", err=True)
        return EXIT_ERROR
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
