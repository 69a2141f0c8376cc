"""The connector's command rules: which `local_bash` command lines are refused, and why.

The check works on the *parsed* command line, never on substrings: the line is split
into words the way a POSIX shell quotes them (`shlex`), cut into simple commands at
`;`, `&&`, `||`, `|`, `&`, newlines and parentheses, and every command substitution
(`$(…)`, backticks, `<(…)`/`>(…)`) and every `bash -c`/`sh -c`/`eval` string is
checked as a command line of its own. Wrappers (`sudo`, `env`, `nice`, `nohup`,
`time`, `timeout`, `exec`, `command`, `xargs`…) and leading `NAME=value` assignments
are looked through, so `sudo rm -rf /` is `rm -rf /`. A quoted argument is data:
`echo "rm -rf /"` runs `echo`, and is allowed; `echo "$(rm -rf /)"` runs `rm`, and is not.

Rules (the `rule` a refusal carries):

- `bash.rm_recursive_root`: `rm -r`/`-R`/`--recursive` of `/`, `~`, `$HOME`, an allowed
  root, a parent of one, or a top-level system directory; `--no-preserve-root`.
- `bash.find_delete_root`: `find` over one of those with `-delete`.
- `bash.mkfs`: `mkfs*`, `mke2fs`, `mkswap`, `wipefs`.
- `bash.dd_device`: `dd of=/dev/…` (other than null, zero, stdout, stderr, tty…).
- `bash.device_write`: a redirect, `tee`, `cp`, `cat`, `mv`, `shred` onto a disk
  (`/dev/sd*`, `/dev/nvme*`, `/dev/hd*`, `/dev/vd*`, `/dev/xvd*`, `/dev/mmcblk*`, `/dev/disk*`).
- `bash.fork_bomb`: a function that runs itself twice or in the background
  (`:(){ :|:& };:`).
- `bash.power`: `shutdown`, `reboot`, `halt`, `poweroff`, `init 0|6`, `telinit 0|6`,
  `systemctl poweroff|reboot|halt|kexec`.
- `bash.chmod_recursive_root`, `bash.chown_recursive_root`: `chmod -R`, `chown -R`,
  `chgrp -R` of a path protected as for `rm`.
- `bash.download_to_shell`: a download (`curl`, `wget`, `fetch`, `aria2c`) piped into a
  shell, or a shell running a downloaded script through `$(…)` or `<(…)`.
- `bash.deny_list`: a `--deny-command` regex found in the normalized command (words
  joined by one space, commands by ` ; `; substitutions are checked as their own lines).
- `bash.unparseable`: a line the shell would not parse (an unclosed quote or substitution).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lynkr.tunnel._connector_shell import ParsedLine, parse_line

__all__ = ["CommandRules", "Refusal", "check_command", "normalize_command"]

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish", "ash", "mksh", "busybox"})
_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c"})
_POWER = frozenset({"shutdown", "reboot", "halt", "poweroff"})
_MKFS = frozenset({"mke2fs", "mkswap", "wipefs"})
_SAFE_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty",
                           "/dev/full", "/dev/random", "/dev/urandom"})
_DISK = re.compile(r"/dev/(sd|nvme|hd|vd|xvd|mmcblk|disk)\w*")
_SYSTEM_DIRS = frozenset({"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt",
                          "/proc", "/root", "/sbin", "/srv", "/sys", "/usr", "/var"})
# Wrappers run the command that follows their options; the value lists the options
# that take an argument (skipped with it).
_WRAPPER_ARGS = {"sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"},
                 "doas": {"-u", "-C"}, "env": {"-u", "-C", "-S"}, "nice": {"-n"},
                 "ionice": {"-c", "-n", "-p"}, "stdbuf": {"-i", "-o", "-e"},
                 "timeout": {"-s", "-k", "--signal", "--kill-after"},
                 "xargs": {"-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"},
                 "watch": {"-n", "--interval"}, "strace": {"-o", "-e", "-p", "-s"}}
_PLAIN_WRAPPERS = frozenset({"nohup", "time", "exec", "command", "builtin", "setsid",
                             "unbuffer"})
_FIND_FILTERS = frozenset({"-name", "-iname", "-path", "-ipath", "-regex", "-iregex",
                           "-wholename", "-newer", "-mtime", "-mmin", "-size", "-empty"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True, slots=True)
class Refusal:
    """A command line the connector will not run: the rule that matched and why."""

    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class CommandRules:
    """What the rules protect and the user's own deny list.

    Attributes:
        home: the user's home directory (`~`, `$HOME`).
        roots: the allowed paths (resolved); deleting one or a parent of one is refused.
        cwd: where the command runs (relative targets are resolved against it).
        deny: the `--deny-command` regexes, searched in the normalized command.
    """

    home: str
    roots: tuple[str, ...] = ()
    cwd: str = "/"
    deny: tuple[re.Pattern[str], ...] = field(default_factory=tuple)


def _strip_wrappers(words: Sequence[str]) -> list[str]:
    """The command a wrapper line actually runs (`sudo -u x rm …` → `rm …`)."""
    words = list(words)
    while words:
        if _ASSIGNMENT.match(words[0]):
            words = words[1:]
            continue
        name = os.path.basename(words[0])
        if name in _PLAIN_WRAPPERS:
            words = words[1:]
            while words and words[0].startswith("-"):
                words = words[1:]
            continue
        if name not in _WRAPPER_ARGS:
            return words
        takes_arg = _WRAPPER_ARGS[name]
        words = words[1:]
        while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):
            words = words[2:] if words[0] in takes_arg else words[1:]
        if name == "timeout" and words:
            words = words[1:]  # the duration
    return words


def _expand(word: str, rules: CommandRules) -> str:
    """A path argument as the shell would see it: `~`, `$HOME`, relative, `X/*` → X."""
    for prefix in ("${HOME}", "$HOME", "~"):
        if word == prefix or word.startswith(prefix + "/"):
            word = rules.home + word[len(prefix):]
            break
    while word.endswith(("/*", "/.*", "/")) and len(word) > 1:
        word = word.rsplit("/", 1)[0] or "/"
    if word in ("*", ".*"):
        word = "."
    return os.path.normpath(os.path.join(rules.cwd, word))


def _protected(word: str, rules: CommandRules) -> str | None:
    """Why deleting or re-owning `word` recursively is refused (None if it is not)."""
    path = _expand(word, rules)
    if path == "/":
        return "the root directory"
    if path == os.path.normpath(rules.home):
        return "your home directory"
    if path in _SYSTEM_DIRS:
        return f"the system directory {path}"
    for root in rules.roots:
        if path == root or root.startswith(path.rstrip("/") + "/"):
            return f"the allowed path {root}" if path == root else \
                f"{path}, which contains the allowed path {root}"
    return None


def _recursive(args: Sequence[str], long_names: Iterable[str], short: str) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg in long_names:
            return True
        if arg.startswith("-") and not arg.startswith("--") and any(c in arg[1:] for c in short):
            return True
    return False


def _operands(args: Sequence[str]) -> list[str]:
    out, after = [], False
    for arg in args:
        if after or not arg.startswith("-") or arg == "-":
            out.append(arg)
        elif arg == "--":
            after = True
    return out


def _check_simple(words: Sequence[str], rules: CommandRules) -> Refusal | None:
    words = _strip_wrappers(words)
    if not words:
        return None
    name, args = os.path.basename(words[0]), words[1:]
    if name == "rm":
        if "--no-preserve-root" in args:
            return Refusal("bash.rm_recursive_root", "rm --no-preserve-root is refused")
        if _recursive(args, ("--recursive",), "rR"):
            for target in _operands(args):
                if (why := _protected(target, rules)) is not None:
                    return Refusal("bash.rm_recursive_root",
                                   f"a recursive delete of {why} is refused")
    elif name == "find" and "-delete" in args:
        first_test = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
        filtered = bool(set(args[first_test:]) & _FIND_FILTERS)
        for target in _operands(args[:first_test]):
            why = _protected(target, rules)
            # A filtered delete inside a project (`find . -name '*.pyc' -delete`) is
            # ordinary; over `/`, home or a system directory it is refused all the same.
            if why is not None and not (filtered and why.startswith("the allowed path")):
                return Refusal("bash.find_delete_root", f"find -delete over {why} is refused")
    elif name.startswith("mkfs") or name in _MKFS:
        return Refusal("bash.mkfs", f"{name} formats a filesystem; refused")
    elif name == "dd":
        for arg in args:
            if arg.startswith("of=/dev/") and arg[3:] not in _SAFE_DEVICES:
                return Refusal("bash.dd_device", f"dd onto the device {arg[3:]} is refused")
    elif name in _POWER or (name in ("init", "telinit") and args[:1] in (["0"], ["6"])) or (
            name == "systemctl" and set(args) & {"poweroff", "reboot", "halt", "kexec"}):
        return Refusal("bash.power", f"{' '.join(words[:2])} stops or restarts the machine; "
                                     "refused")
    elif name in ("chmod", "chown", "chgrp") and _recursive(args, ("--recursive",), "R"):
        rule = "bash.chmod_recursive_root" if name == "chmod" else "bash.chown_recursive_root"
        for target in _operands(args)[1:]:
            if (why := _protected(target, rules)) is not None:
                return Refusal(rule, f"{name} -R of {why} is refused")
    elif name in ("tee", "cp", "shred", "cat", "mv"):
        for target in _operands(args):
            if _DISK.match(target):
                return Refusal("bash.device_write", f"{name} onto the disk {target} is refused")
    return None


def _fork_bomb(tokens: Sequence[str]) -> Refusal | None:
    """`NAME(){ … }` or `function NAME { … }` whose body runs NAME twice or in the background."""
    for i, token in enumerate(tokens[:-2]):
        if token == "function":
            name, rest = tokens[i + 1], tokens[i + 2:]
        elif tokens[i + 1] == "()":
            name, rest = token, tokens[i + 2:]
        elif tokens[i + 1:i + 3] == ["(", ")"]:
            name, rest = token, tokens[i + 3:]
        else:
            continue
        rest = rest[1:] if rest[:1] == ["()"] else rest
        if rest[:1] != ["{"]:
            continue
        body = rest[:rest.index("}")] if "}" in rest else rest
        if body.count(name) >= 2 or (name in body and any("&" in t for t in body)):
            return Refusal("bash.fork_bomb", f"the function {name!r} calls itself "
                                             "recursively in parallel (a fork bomb)")
    return None


def normalize_command(line: str) -> str:
    """The command's words joined by one space, its commands by ` ; ` (deny-list input).

    Raises:
        ValueError: the line does not parse.
    """
    parsed = parse_line(line)
    return " ; ".join(" ".join(c) for c in parsed.commands if c)


def _download_to_shell(parsed: ParsedLine) -> Refusal | None:
    for pipeline in parsed.pipelines:
        names = [os.path.basename(w[0]) if (w := _strip_wrappers(parsed.commands[i])) else ""
                 for i in pipeline]
        for j, name in enumerate(names):
            if name in _DOWNLOADERS and any(n in _SHELLS for n in names[j + 1:]):
                return Refusal("bash.download_to_shell",
                               f"piping a download ({name}) into a shell is refused")
    runs_shell = any((w := _strip_wrappers(c)) and os.path.basename(w[0]) in _SHELLS
                     for c in parsed.commands)
    if runs_shell:
        for body in parsed.nested:
            try:
                inner = parse_line(body)
            except ValueError:
                continue
            if any((w := _strip_wrappers(c)) and os.path.basename(w[0]) in _DOWNLOADERS
                   for c in inner.commands):
                return Refusal("bash.download_to_shell",
                               "running a downloaded script in a shell is refused")
    return None


def _inline_scripts(commands: Sequence[Sequence[str]]) -> list[str]:
    """The strings `bash -c`, `sh -c` and `eval` run as command lines."""
    found = []
    for command in commands:
        words = _strip_wrappers(command)
        if not words:
            continue
        name = os.path.basename(words[0])
        if name == "eval":
            found.append(" ".join(words[1:]))
        elif name in _SHELLS or name == "su":
            for k, word in enumerate(words[1:-1], start=1):
                if word.startswith("-") and not word.startswith("--") and "c" in word:
                    found.append(words[k + 1])
                    break
    return found


def check_command(line: str, rules: CommandRules, *, _depth: int = 0) -> Refusal | None:
    """The first rule `line` breaks, or None when it may run (see module docstring)."""
    if _depth > 8:
        return Refusal("bash.unparseable", "the command nests too deeply to check")
    try:
        parsed = parse_line(line)
    except ValueError as exc:
        return Refusal("bash.unparseable", f"the command does not parse: {exc}")
    normalized = " ; ".join(" ".join(c) for c in parsed.commands if c)
    for pattern in rules.deny:
        if pattern.search(normalized):
            return Refusal("bash.deny_list", f"the command matches the deny rule "
                                             f"{pattern.pattern!r}")
    for target in parsed.redirects:
        if _DISK.match(target):
            return Refusal("bash.device_write", f"writing to the disk {target} is refused")
    refusal = _fork_bomb(parsed.tokens) or _download_to_shell(parsed)
    if refusal is not None:
        return refusal
    for command in parsed.commands:
        if (refusal := _check_simple(command, rules)) is not None:
            return refusal
    for inner in [*parsed.nested, *_inline_scripts(parsed.commands)]:
        if (refusal := check_command(inner, rules, _depth=_depth + 1)) is not None:
            return refusal
    return None
