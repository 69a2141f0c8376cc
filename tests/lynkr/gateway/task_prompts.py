"""A small labelled set of coding prompts for the task-type rules (shared data, not a test).

Written as a developer would type them into Claude Code, ten per task type, before the
accuracy was measured; `None` marks prompts that are none of the four (they keep the
family map). `tests/lynkr/gateway/test_routing.py` measures the rules on it.
"""

from __future__ import annotations

LABELLED: list[tuple[str, str | None]] = [
    # code generation
    ("Write a function that parses ISO 8601 durations like P3DT4H into seconds", "code_generation"),
    ("Implement an LRU cache class in Python with get and put in O(1)", "code_generation"),
    ("Create a new FastAPI endpoint for uploading avatars, store them in S3", "code_generation"),
    ("add a --dry-run flag to the deploy script", "code_generation"),
    ("Generate a React component that shows a paginated table of invoices", "code_generation"),
    ("scaffold a CLI tool with subcommands init, build and serve", "code_generation"),
    ("Build me a small rate limiter middleware for express", "code_generation"),
    ("Port this bash script to Python please", "code_generation"),
    ("write unit tests for the tokenizer module", "code_generation"),
    ("I need a SQL migration that adds an archived_at column to projects", "code_generation"),
    # debugging
    ("I get TypeError: cannot read properties of undefined (reading 'map') on the dashboard",
     "debugging"),
    ("The test test_checkout_total fails with an off-by-one, can you fix it?", "debugging"),
    ("why does the worker hang after the first job?", "debugging"),
    ("Here is the traceback from prod, what is going on?\nTraceback (most recent call last):",
     "debugging"),
    ("the build is broken since yesterday's merge", "debugging"),
    ("Memory keeps growing in the websocket server, looks like a leak somewhere", "debugging"),
    ("Login returns 500 but only for users with a plus sign in their email", "debugging"),
    ("debug the flaky integration test in tests/test_sync.py", "debugging"),
    ("segfault when calling the C extension with an empty buffer", "debugging"),
    ("The totals in the CSV export are wrong for negative amounts", "debugging"),
    # review
    ("Review my changes in src/auth before I open the PR", "review"),
    ("can you do a code review of the diff on this branch?", "review"),
    ("Is this code idiomatic Go? Any issues you see?", "review"),
    ("Please look over the migration for anything risky", "review"),
    ("Give me feedback on the API design in api/routes.py", "review"),
    ("audit this module for security problems", "review"),
    ("critique the error handling in the payment service", "review"),
    ("Any concerns with how we handle retries in client.py?", "review"),
    ("check the pull request #42 for best practices", "review"),
    ("Spot issues in this function before I merge it", "review"),
    # documentation
    ("Write a README for this repo with install and usage sections", "documentation"),
    ("add docstrings to every public function in utils/dates.py", "documentation"),
    ("Document the REST API in docs/api.md", "documentation"),
    ("Update the CHANGELOG for the 2.3 release", "documentation"),
    ("explain the config options in the docs for new users", "documentation"),
    ("Add comments to the tricky parts of the scheduler", "documentation"),
    ("write a tutorial on setting up the dev environment", "documentation"),
    ("Generate JSDoc for the exported helpers", "documentation"),
    ("The docs for the plugin system are out of date, please refresh them", "documentation"),
    ("write an API reference page for the client library", "documentation"),
    # none of the four
    ("what time zone does the server use?", None),
    ("list the files in this directory", None),
    ("run the test suite", None),
    ("hello", None),
    ("commit these changes with a good message", None),
    ("which python version are we on?", None),
]
