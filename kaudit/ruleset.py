"""Load rule files, validate them, bind their templates, and select the rules to run."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional, Sequence, Union

from kaudit.checks import TEMPLATES
from kaudit.checks.base import Check, Hit, Target, TemplateError
from kaudit.errors import KauditError
from kaudit.model import Frameworks, RuleInfo, Severity
from kaudit.paths import builtin_rules_location, schema_path
from kaudit.sha256 import sha256
from kaudit.sources.yamldoc import Document, deepest_position, parse_documents, unpack
from kaudit.value import replace, value

RULE_SUFFIXES = (".yaml", ".yml")
KIND_GROUPS = ("workloads", "all")
if TYPE_CHECKING:
    from pathlib import Path

StrPath = Union[str, "os.PathLike[str]"]  # rule files are read by name: pathlib stays off the hook path

ALL_CONTAINER_KINDS = ("container", "initContainer", "ephemeralContainer")


@value
class Rule:
    """A rule file as loaded: its metadata, its template's params and the check bound to them."""

    id: str
    title: str
    severity: Severity
    category: str
    target: str
    kinds: frozenset[str]
    template: str
    params: Mapping[str, Any]
    message: str
    frameworks: Frameworks
    references: tuple[str, ...]
    talks: tuple[Mapping[str, str], ...]
    docs: Mapping[str, str]
    tests: "RuleTests"  # its own fixtures: `fixtures`, `fixture_params`, `fixture_images`
    container_kinds: frozenset[str]
    linux_only: bool
    source: str
    builtin: bool
    check: Check
    same_as: tuple[str, ...] = ()  # relations.same-as: the same fact as these rules' (kaudit/relations.py)
    implies: tuple[str, ...] = ()  # relations.implies: these rules' findings follow from this one's
    enabled: bool = True  # false: opt-in, off unless the config or --rule turns it on (config.apply_rule_settings)

    @property
    def fixtures(self) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        tests = self.tests.get()
        return {"fail": tests["fail"], "pass": tests["pass"]}

    @property
    def fixture_params(self) -> Mapping[str, Any]:
        return self.tests.get().get("params") or {}

    @property
    def fixture_images(self) -> Mapping[str, Mapping[str, str]]:
        return self.tests.get().get("image-facts") or {}

    def applies_to(self, kind: str, has_pod: bool) -> bool:
        if self.target == "namespace":
            return False  # evaluated once per namespace, not per object
        kinds = self.kinds
        return "all" in kinds or kind in kinds or (has_pod and "workloads" in kinds)

    def info(self) -> RuleInfo:
        return RuleInfo(self.id, self.title, self.severity, self.category, self.frameworks,
                        self.docs.get("fix", ""), self.references, self.docs, self.same_as, self.implies)

    def with_params(self, params: Mapping[str, Any]) -> "Rule":
        """A copy with params merged over the rule's own and the template bound again."""
        merged = {**self.params, **params}
        return replace(self, params=merged, check=_bind(self.template, merged, self.target, self.source))


class RuleFileError(KauditError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))
        self.problems = problems


def rule_files(directory: Path) -> list[Path]:
    return [directory / relative for relative in _rule_names(directory)]


def _rule_names(directory: StrPath) -> list[str]:
    """The rule files under `directory`, as sorted relative POSIX paths (plain strings: the index
    check reads them on every run, and 120 Path objects cost more than the check)."""
    found: list[str] = []
    top = os.fspath(directory)
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = os.path.relpath(root, top).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        found.extend(prefix + f for f in sorted(files) if f.endswith(RULE_SUFFIXES))
    return found


INDEX_NAME = "index.json"
INDEX_FORMAT = 2  # 2: without each rule's `tests`, read from its file by whoever runs them


class RuleTests:
    """A rule's `tests` (fixtures, their params and image facts), as given or read from the rule's
    file on first use. The built-in index leaves them out: they were a third of it, parsed by every
    scan, and only the test suite and `kaudit rules test` run them."""

    __slots__ = ("_path", "_tests")

    def __init__(self, path: StrPath, tests: Optional[Mapping[str, Any]] = None) -> None:
        self._path = path
        self._tests = tests

    def get(self) -> Mapping[str, Any]:
        if self._tests is None:
            self._tests = read_rule_document(self._path).data["tests"]
        return self._tests


def _rules_digest(directory: StrPath, names: Sequence[str]) -> str:
    """A digest of the rule files' names (relative, POSIX) and contents."""
    digest = sha256(f"kaudit-rules-index:{INDEX_FORMAT}".encode())
    top = os.fspath(directory)
    for name in names:
        with open(os.path.join(top, name), "rb") as stream:
            digest.update(name.encode() + b"\0" + stream.read() + b"\0")
    return digest.hexdigest()


def compile_builtin_index() -> str:
    """The JSON text of rules/index.json: every built-in rule document, keyed by a digest of the files."""
    directory = builtin_rules_location()
    names = _rule_names(directory)
    documents = [[name, {key: value for key, value in read_rule_document(os.path.join(directory, name)).data.items()
                         if key != "tests"}]
                 for name in names]
    return json.dumps({"digest": _rules_digest(directory, names), "rules": documents}, indent=1, sort_keys=True) + "\n"


def load_builtin_rules(use_index: bool = True) -> list[Rule]:
    """The built-in rules. Parsing every rule file's YAML costs more than the rest of a pre-commit run, so the
    committed rules/index.json is used when its digest matches the files (else YAML is parsed).
    The index holds no fixtures: a rule reads them from its file when they are run (`RuleTests`).
    Built-in rules are validated by the test suite, so this path never imports jsonschema."""
    directory = builtin_rules_location()
    names = _rule_names(directory)
    if use_index:
        try:
            with open(os.path.join(directory, INDEX_NAME), encoding="utf-8") as stream:
                index = json.load(stream)
            if index.get("digest") == _rules_digest(directory, names):
                return [rule_from_document(os.path.join(directory, name), data, builtin=True)
                        for name, data in index["rules"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing or stale: the files themselves are the truth
    return [load_rule_file(os.path.join(directory, name), validate=False, builtin=True) for name in names]


def custom_rule_files(directory: str) -> list[Path]:
    """The rule files of a user's rules directory; a missing or empty one is an error, not a no-op."""
    from pathlib import Path

    path = Path(directory)
    if not path.is_dir():
        raise KauditError(f"{directory}: rules directory not found")
    files = rule_files(path)
    if not files:
        raise KauditError(f"{directory}: no rule files (.yaml, .yml) in this directory")
    return files


def load_rule_dirs(directories: Iterable[str]) -> list[Rule]:
    rules = []
    for directory in directories:
        problems: list[str] = []
        for file in custom_rule_files(directory):
            try:
                rules.append(load_rule_file(file, validate=True))
            except RuleFileError as error:
                problems.extend(error.problems)
        if problems:
            raise RuleFileError(problems)
    return rules


def combine(*groups: Iterable[Rule]) -> list[Rule]:
    """All rules, refusing two with one id (a custom rule cannot silently replace a built-in one) and
    relations to rules that do not exist."""
    seen: dict[str, Rule] = {}
    for rule in (r for group in groups for r in group):
        if rule.id in seen:
            raise KauditError(f"{rule.source}: rule id {rule.id!r} is already defined in {seen[rule.id].source}")
        seen[rule.id] = rule
    problems = relation_problems(seen.values(), seen)
    if problems:
        raise RuleFileError(problems)
    return list(seen.values())


def relation_problems(rules: Iterable[Rule], known: Mapping[str, Rule]) -> list[str]:
    """A relation naming an unknown rule, or the rule itself."""
    problems = []
    for rule in rules:
        for kind, others in (("same-as", rule.same_as), ("implies", rule.implies)):
            for other in others:
                if other == rule.id:
                    problems.append(f"{rule.source}: relations.{kind} names the rule itself")
                elif other not in known:
                    problems.append(f"{rule.source}: relations.{kind} names {other!r}, which is not a known rule "
                                    "(see `kaudit rules list`)")
    return problems


def read_rule_document(path: StrPath) -> Document:
    return read_rule_text(path)[1]


def read_rule_text(path: StrPath) -> tuple[str, Document]:
    """A rule file's text and its one YAML document (a mapping)."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise RuleFileError([f"{path}: cannot read: {error}"]) from None
    documents = list(parse_documents(text))
    if len(documents) != 1:
        raise RuleFileError([f"{path}: a rule file holds exactly one YAML document, found {len(documents)}"])
    document = documents[0]
    if not isinstance(document, Document):
        raise RuleFileError([f"{path}:{document.line}: {document.message}"])
    if not isinstance(document.data, dict):
        raise RuleFileError([f"{path}:{document.line}:{document.column}: a rule is a mapping"])
    return text, document


def load_rule_file(path: StrPath, *, validate: bool, builtin: bool = False) -> Rule:
    text, document = read_rule_text(path)
    data = document.data
    if validate:
        problems = validate_rule(data, str(path), text)
        if problems:
            raise RuleFileError(problems)
    return rule_from_document(path, data, builtin=builtin)


def rule_from_document(path: StrPath, data: Mapping[str, Any], *, builtin: bool) -> Rule:
    target = data["target"]
    default_kinds = ["all"] if target == "object" else ["workloads"]
    return Rule(
        id=data["id"],
        title=data["title"],
        severity=Severity.parse(data["severity"]),
        category=data["category"],
        target=target,
        kinds=frozenset(data.get("kinds") or default_kinds),
        template=data["template"],
        params=data.get("params") or {},
        message=data["message"],
        frameworks=normalize_frameworks(data.get("frameworks") or {}),
        references=tuple(data.get("references") or ()),
        talks=tuple(data.get("talks") or ()),
        docs=dict(data["docs"]),
        tests=RuleTests(path, data.get("tests")),  # None: from the index, read from the file when run
        container_kinds=frozenset(data.get("container-kinds") or ALL_CONTAINER_KINDS),
        linux_only=bool(data.get("linux-only", False)),
        source=str(path),
        builtin=builtin,
        check=(_BoundOnFirstUse if builtin else _bind)(data["template"], data.get("params") or {}, target, str(path)),
        same_as=tuple((data.get("relations") or {}).get("same-as") or ()),
        implies=tuple((data.get("relations") or {}).get("implies") or ()),
        enabled=bool(data.get("enabled", True)),
    )


def normalize_frameworks(tags: Mapping[str, Any]) -> Frameworks:
    """`{cis: "5.2.8", nsa: [a, b]}` -> `{cis: ("5.2.8",), nsa: ("a", "b")}`."""
    return {name: (value,) if isinstance(value, str) else tuple(value) for name, value in tags.items()}


class _BoundOnFirstUse:
    """A built-in rule's check, bound to its template when first called. A pre-commit run scans a
    file or two: binding all rules up front (compiling their patterns and schemas) cost more than
    checking the file, and most rules never meet a kind they apply to. Built-in rules are bound
    and tested by the test suite, so binding cannot fail here; a user's rules bind on load, where
    a bad param is reported with its file."""

    __slots__ = ("_args", "_check")

    def __init__(self, template_key: str, params: Mapping[str, Any], target: str, source: str) -> None:
        self._args = (template_key, params, target, source)
        self._check: Optional[Check] = None

    def __call__(self, subject: Target) -> Iterable[Hit]:
        return self.bound()(subject)

    def bound(self) -> Check:
        check = self._check
        if check is None:
            check = self._check = _bind(*self._args)
        return check


def bound_check(rule: Rule) -> Check:
    """The function `rule.check` calls, bound now if it binds on first use: the engine calls it for
    each object, pod and container the rule applies to, without the indirection."""
    check = rule.check
    return check.bound() if isinstance(check, _BoundOnFirstUse) else check


def _bind(template_key: str, params: Mapping[str, Any], target: str, source: str) -> Check:
    template = TEMPLATES.get(template_key)
    if template is None:
        raise RuleFileError([f"{source}: unknown template {template_key!r} (known: {', '.join(sorted(TEMPLATES))})"])
    if target not in template.targets:
        raise RuleFileError([f"{source}: template {template_key!r} does not support target {target!r}"])
    try:
        return template.bind(params, target)
    except TemplateError as error:
        raise RuleFileError([f"{source}: {error}"]) from None


# What a rule's fixtures need to run; a problem elsewhere (docs, title, ...) does not stop them.
_NEEDED_TO_RUN = ("template", "params", "target", "kinds", "tests", "container-kinds", "linux-only", "message")


def validate_rule(data: Mapping[str, Any], source: str, text: Optional[str] = None) -> list[str]:
    """Every problem with a rule document, each as `file:line:column: path: message`; `text`, the
    file's text, lets a value YAML 1.1 misread be quoted as written."""
    return [problem for _, problem in rule_problems(data, source, text)]


def rule_problems(data: Mapping[str, Any], source: str, text: Optional[str] = None) -> list[tuple[str, str]]:
    """(the top-level key at fault, or "" for the rule as a whole; the problem line), all of them in one pass."""
    from kaudit.jsonschema_errors import format_issue, schema_issues  # imports jsonschema: off the hot path

    positions = getattr(data, "positions", None) or {}
    root = min(unpack(p) for p in positions.values()) if positions else (1, 1)  # the rule's first key

    def line(path: tuple[Any, ...], message: str, position: Optional[tuple[int, int]] = None) -> tuple[str, str]:
        position = position or deepest_position(data, path) or root
        return (str(path[0]) if path else ""), format_issue(source, (path, position, message))

    found = [line(path, message, position) for path, position, message in schema_issues(_rule_schema(), data, text=text)]
    at_fault = {key for key, _ in found}
    template_key = data.get("template")
    template = TEMPLATES.get(template_key) if isinstance(template_key, str) else None
    params = data.get("params") or {}
    tests = data.get("tests")
    if template is not None and not at_fault & {"params", "template", "tests"} and isinstance(tests, dict) \
            and isinstance(tests.get("params"), dict) and isinstance(params, dict):
        found.extend(("tests", format_issue(source, issue)) for issue in schema_issues(
            template.params_schema, {**params, **tests["params"]}, data, ("tests", "params"), text))
    if template is not None and not at_fault & {"params", "template", "target"}:
        try:
            template.bind(params, data["target"])
        except TemplateError as error:
            found.append(line(("params",), f"{error} (template {data['template']})"))
    frameworks = data.get("frameworks")
    if "frameworks" not in at_fault and isinstance(frameworks, dict):
        from kaudit.frameworks import tag_problems

        for problem in tag_problems(normalize_frameworks(frameworks)):  # "frameworks.<id>: ..."
            where, _, message = problem.partition(": ")
            found.append(line(tuple(where.split(".", 1)), message))
    return found


def runnable_copy(data: Mapping[str, Any], at_fault: set[str]) -> Optional[dict[str, Any]]:
    """The rule with placeholders for broken metadata, so that its fixtures can still run; None
    when what they need is broken."""
    if at_fault & {"", *_NEEDED_TO_RUN} or not {"template", "target", "tests", "message"} <= set(data):
        return None
    placeholders = {"id": "rule-under-test", "title": "?", "severity": "info", "category": "custom",
                    "docs": {"what": "?", "why": "?", "example": "?", "fix": "?"}}
    copy = dict(data)
    for key, placeholder in placeholders.items():
        if key in at_fault or key not in copy:
            copy[key] = placeholder
    for key in ("frameworks", "references", "talks", "relations", "enabled"):
        if key in at_fault:
            copy.pop(key, None)
    return copy


_RULE_SCHEMA: Optional[Mapping[str, Any]] = None


def _rule_schema() -> Mapping[str, Any]:
    global _RULE_SCHEMA
    if _RULE_SCHEMA is None:
        _RULE_SCHEMA = json.loads(schema_path("rule.schema.json").read_text(encoding="utf-8"))
    return _RULE_SCHEMA
