"""The `lynkr` command line.

Every module `lynkr/cli/_cmd_<topic>.py` contributes commands through
`register(subparsers)`, discovered in name order, so each area owns its commands.
A command handler takes the parsed arguments and returns the exit code. Errors a
user can fix print one line to stderr (exit 2 for settings, 1 otherwise); a
traceback is never the answer. A reader that closes stdout early (`| head`) ends the
command quietly with exit code 141, as it ends other Unix tools.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from lynkr.errors import ConfigError, LynkrError

__all__ = ["build_parser", "main"]

_SIGPIPE_EXIT = 141  # 128 + SIGPIPE (13)


class _VersionAction(argparse.Action):
    """`--version`: print `lynkr X.Y.Z` (from the package metadata) and exit 0.

    argparse's own "version" action takes the text when the parser is built; this one
    reads the metadata only when the flag is given, so other commands never pay for it.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from lynkr._version import lynkr_version

        print(f"lynkr {lynkr_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every discovered command module registered."""
    parser = argparse.ArgumentParser(
        prog="lynkr",
        description="Lynkr: an event-sourced Anthropic-compatible gateway for Claude Code.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    package = importlib.import_module(__name__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def _reader_gone() -> int:
    """stdout's reader left early (`lynkr sessions | head`): end quietly, as `cat` does.

    The exit code is 141 (128 + SIGPIPE), what a shell reports for a Unix tool cut off
    by `head`, so `set -o pipefail` scripts see lynkr behave like the others. stdout is
    pointed at /dev/null so the interpreter's last flush cannot fail a second time.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return _SIGPIPE_EXIT


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lynkr` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a reader that went away is noticed here, not at exit
    except BrokenPipeError:
        return _reader_gone()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"lynkr: config: {problem}", file=sys.stderr)
        return 2
    except LynkrError as exc:
        print(f"lynkr: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
