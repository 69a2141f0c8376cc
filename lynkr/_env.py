"""`Env`: typed reads of settings from the environment, `.env` and `lynkr.toml`.

Precedence: process environment, then `.env` in the working directory, then the
`[env]` table (flat NAME = value) of `lynkr.toml`. Every read that fails records
one human-readable problem instead of raising, so that start-up can report all
problems at once (see `lynkr.config.load_settings`).
"""

from __future__ import annotations

import builtins
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Env", "parse_dotenv"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse `.env` text: NAME=value lines, `#` comments, optional quotes and `export`."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name] = value
    return values


class Env:
    """Merged settings source that collects problems instead of raising."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        cwd: builtins.str | os.PathLike[builtins.str] | None = None,
    ) -> None:
        self.cwd = Path(cwd or os.getcwd())
        self.problems: builtins.list[builtins.str] = []
        self.toml: dict[builtins.str, Any] = {}
        merged: dict[builtins.str, builtins.str] = {}
        toml_path = self.cwd / "lynkr.toml"
        if toml_path.is_file():
            try:
                self.toml = tomllib.loads(toml_path.read_text())
                merged.update({k: str(v) for k, v in self.toml.get("env", {}).items()})
            except (tomllib.TOMLDecodeError, OSError) as exc:
                self.problems.append(f"lynkr.toml: {exc}")
        dotenv = self.cwd / ".env"
        if dotenv.is_file():
            merged.update(parse_dotenv(dotenv.read_text()))
        merged.update(os.environ if environ is None else environ)
        self.values = merged

    def str(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str | None:
        """The raw value, or `default` when unset or empty."""
        value = self.values.get(name)
        return value if value not in (None, "") else default

    def int(
        self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None
    ) -> builtins.int:
        """An integer setting."""
        raw = self.str(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name}: {raw!r} is not a whole number")
            return default
        if minimum is not None and value < minimum:
            self.problems.append(f"{name}: {value} is below the minimum {minimum}")
            return default
        return value

    def float(self, name: builtins.str, default: builtins.float) -> builtins.float:
        """A decimal setting."""
        raw = self.str(name)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            self.problems.append(f"{name}: {raw!r} is not a number")
            return default

    def positive(self, name: builtins.str, default: builtins.float) -> builtins.float:
        """A decimal setting above 0."""
        value = self.float(name, default)
        if value <= 0:
            self.problems.append(f"{name}: {value} must be above 0")
            return default
        return value

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        """A true/false setting (1/0, true/false, yes/no, on/off)."""
        raw = self.values.get(name)
        if raw is None:
            return default
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        self.problems.append(f"{name}: {raw!r} is not true or false")
        return default

    def url(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str | None:
        """An http(s) URL setting, validated."""
        raw = self.str(name, default)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.problems.append(f"{name}: {raw!r} is not an http(s) URL")
            return None
        return raw

    def list(self, name: builtins.str, sep: builtins.str = ",") -> builtins.list[builtins.str]:
        """A separated list setting; empty items dropped."""
        raw = self.str(name)
        return [item.strip() for item in raw.split(sep) if item.strip()] if raw else []

    def choice(
        self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]
    ) -> builtins.str:
        """A setting limited to `choices` (case-insensitive)."""
        raw = (self.str(name) or default).strip().lower()
        if raw not in choices:
            self.problems.append(f"{name}: {raw!r} is not one of {', '.join(choices)}")
            return default
        return raw

    def path(self, name: builtins.str, default: builtins.str | os.PathLike[builtins.str]) -> Path:
        """A filesystem path setting, relative paths taken from the working directory."""
        raw = self.str(name)
        path = Path(raw).expanduser() if raw else Path(default)
        return path if path.is_absolute() else (self.cwd / path)
