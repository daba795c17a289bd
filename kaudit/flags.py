"""Command-line flags of Kubernetes components and etcd, read the way the programs read them.

Kubernetes components parse flags with spf13/pflag, etcd with Go's `flag` package:
- `--name=value` and `--name value` both set a flag, except a boolean flag: `--anonymous-auth false`
  sets it to true and leaves `false` as a stray argument (which the component then refuses);
- a flag given again: the last value wins, except list flags (`--authorization-mode`,
  `--enable-admission-plugins`, pflag's StringSlice) where every occurrence adds its values;
- etcd (Go `flag`) also takes a single dash (`-client-cert-auth=true`);
- `--` ends the flags.
Where each word was found is kept, so a finding points at the word to change.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple, Optional

from kaudit.model import FieldPath
from kaudit.workloads import sequence

MAX_WORDS = 2000  # a command line longer than this is not a component's: the rest is not read

# Boolean flags the checks read (a space-separated value is not theirs: see the module doc).
BOOLEAN_FLAGS = frozenset({
    "anonymous-auth", "profiling", "allow-privileged", "client-cert-auth", "peer-client-cert-auth",
    "auto-tls", "peer-auto-tls", "rotate-certificates", "protect-kernel-defaults", "service-account-lookup",
    "use-service-account-credentials",
})
LIST_FLAGS = frozenset({"authorization-mode", "enable-admission-plugins", "disable-admission-plugins"})
PROGRAMS = frozenset({"kube-apiserver", "etcd", "kubelet", "kube-controller-manager", "kube-scheduler"})
SINGLE_DASH_PROGRAMS = frozenset({"etcd"})

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(text: str) -> Optional[bool]:
    """Go's strconv.ParseBool, which both flag packages use; None for anything else (the program
    would refuse to start)."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


class Flag(NamedTuple):  # NamedTuples, not dataclasses: cheaper to define on the hook path
    name: str
    value: str
    path: FieldPath  # where the word that sets it is, relative to the object


class Flags:
    """The flags of one command line: every occurrence of each, in order."""

    def __init__(self, program: str = "") -> None:
        self.program = program
        self.occurrences: dict[str, list[Flag]] = {}
        self.stray: list[Flag] = []  # words that are no flag's value (e.g. after a boolean)

    def add(self, name: str, value: str, path: FieldPath) -> None:
        self.occurrences.setdefault(name, []).append(Flag(name, value, path))

    def last(self, name: str) -> Optional[Flag]:
        found = self.occurrences.get(name)
        return found[-1] if found else None

    def value(self, name: str) -> Optional[str]:
        flag = self.last(name)
        return flag.value if flag is not None else None

    def items(self, name: str) -> list[tuple[str, Flag]]:
        """Each comma-separated item of a list flag, with the occurrence that gives it."""
        return [(item.strip(), flag) for flag in self.occurrences.get(name, ())
                for item in flag.value.split(",") if item.strip()]

    def __contains__(self, name: object) -> bool:
        return name in self.occurrences


def program_of(container: Mapping[str, Any]) -> Optional[str]:
    """The program a container runs, by the file name of its first word (command, else args), if it
    is one of PROGRAMS; None otherwise (a shell, a wrapper, anything else)."""
    words = sequence(container.get("command")) or sequence(container.get("args"))
    if not words or not isinstance(words[0], str):
        return None
    name = words[0].rsplit("/", 1)[-1]
    return name if name in PROGRAMS else None


def container_flags(container: Mapping[str, Any], container_path: FieldPath = ()) -> Optional[Flags]:
    """The flags of a container running one of PROGRAMS (command then args, as the runtime joins
    them), or None when it runs something else."""
    program = program_of(container)
    if program is None:
        return None
    words: list[tuple[Any, FieldPath]] = []
    for key in ("command", "args"):
        words.extend((word, container_path + (key, index)) for index, word in enumerate(sequence(container.get(key))))
    return parse_words(program, words[1:])


def parse_words(program: str, words: Iterable[tuple[Any, FieldPath]]) -> Flags:
    flags = Flags(program)
    pending: Optional[tuple[str, FieldPath]] = None  # a value flag waiting for its value
    single_dash = program in SINGLE_DASH_PROGRAMS
    for count, (word, path) in enumerate(words):
        if count >= MAX_WORDS:
            break
        text = word if isinstance(word, str) else "" if word is None else str(word)
        if pending is not None:
            flags.add(pending[0], text, pending[1])
            pending = None
            continue
        if text == "--":
            break
        if text.startswith("--"):
            body = text[2:]
        elif single_dash and text.startswith("-") and len(text) > 1:
            body = text[1:]
        else:
            flags.stray.append(Flag("", text, path))
            continue
        name, equals, value = body.partition("=")
        if equals:
            flags.add(name, value, path)
        elif name in BOOLEAN_FLAGS:
            flags.add(name, "true", path)
        else:
            pending = (name, path)
    if pending is not None:  # a value flag at the end: pflag refuses it ("flag needs an argument")
        flags.add(pending[0], "", pending[1])
    return flags


def map_flags(program: str, args: Any, base: FieldPath) -> Flags:
    """Flags given as kubeadm extraArgs: a map name -> value (kubeadm.k8s.io/v1beta3) or a list of
    {name, value} (v1beta4, where a name may repeat). Entries that are neither are not flags."""
    flags = Flags(program)
    if isinstance(args, dict):
        for count, (name, value) in enumerate(args.items()):
            if count >= MAX_WORDS:
                break
            if isinstance(name, str):
                flags.add(name, _text(value), base + (name,))
    elif isinstance(args, list):
        for index, entry in enumerate(args[:MAX_WORDS]):
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                where = base + (index, "value") if "value" in entry else base + (index,)
                flags.add(entry["name"], _text(entry.get("value")), where)
    return flags


def merged(defaults: Mapping[str, str], given: Flags, default_path: FieldPath) -> Flags:
    """kubeadm's flags for a component: its defaults, each replaced by the user's flag of that name."""
    flags = Flags(given.program)
    for name, value in defaults.items():
        if name not in given:
            flags.add(name, value, default_path)
    for name, occurrences in given.occurrences.items():
        flags.occurrences.setdefault(name, []).extend(occurrences)
    return flags


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # YAML `true` in a map of strings: kubeadm would refuse it
    return "" if value is None else str(value)
