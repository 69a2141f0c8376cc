"""The actors exception tree.

```
ActorError
├── CommandRejectedError      a session command does not fit the session's state
├── InlineBlockingError       an actor running inline (on trio's thread) tried to wait
├── InvalidSessionIdError     a session id that cannot name a stream
├── McpServerExistsError      an MCP server of that name is already attached
├── McpServerNotFoundError    no MCP server of that name is attached
├── SessionLoopStoppedError   the loop guard refused the request (`SessionLoopStopped`)
└── SessionUnavailableError   the session (or its registry) stopped and could not be reached
```

Storage failures keep their `eventstore` classes (`ConcurrencyError`,
`StoreClosedError`, `SessionFoldError` …): the actors pass them through unchanged.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "CommandRejectedError",
    "InlineBlockingError",
    "InvalidSessionIdError",
    "McpServerExistsError",
    "McpServerNotFoundError",
    "SessionLoopStoppedError",
    "SessionUnavailableError",
]


class ActorError(Exception):
    """Root of every error the actors package raises itself."""


class CommandRejectedError(ActorError):
    """A command was refused because it does not fit the current state; nothing was appended."""


class InlineBlockingError(ActorError, RuntimeError):
    """An actor handling a message inline, on a thread that must not block (trio's), was
    about to wait; its `may_run_inline` let through a message it cannot handle there."""


class InvalidSessionIdError(ActorError, ValueError):
    """A session id is empty, too long, or holds whitespace or control characters."""


class SessionUnavailableError(ActorError):
    """The session actor stopped twice in a row, or the registry itself is stopped."""


class SessionLoopStoppedError(ActorError):
    """The loop guard refused the request; `SessionLoopStopped` was appended and no turn
    started. The message is the sentence for the client."""


class McpServerExistsError(ActorError):
    """A server with that name is already attached."""


class McpServerNotFoundError(ActorError):
    """No server with that name is attached."""
