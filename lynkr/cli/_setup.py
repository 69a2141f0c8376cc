"""What every command does first: settings loaded, logging pointed at stderr.

A command's result is its stdout; its logs go to stderr, human-readable on a
terminal and JSON lines otherwise, unless LOG_FORMAT says `console` or `json`
(`lynkr.logs`). A command that reads settings through `load_cli_settings` gets
that rule for free, so no log line can land between the lines of its result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lynkr.config import Settings

__all__ = ["load_cli_settings"]


def load_cli_settings() -> Settings:
    """The validated settings, with logging configured from LOG_LEVEL and LOG_FORMAT.

    Raises:
        ConfigError: a setting is invalid (the CLI prints one line per problem).
    """
    # Imported here, not at the top: `lynkr --help` never pays for them.
    from lynkr.config import load_settings
    from lynkr.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.server.log_level, log_format=settings.server.log_format)
    return settings
