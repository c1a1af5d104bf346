"""What went wrong, and where: the project's errors as plain data.

Every room raises a Problem (or a subclass naming the room).  Its message
is the sentence the user reads; where it applies is in fields: the
configuration file and line, the parsed node, the nginx it concerns.  Code
and tests read the fields; only the certbot edge (plugin.py) turns a
Problem into one of certbot's errors, in one place (``EDGE_ERRORS``
there).  Nothing here imports certbot.
"""
from typing import Any, Optional


class Problem(Exception):
    """A refusal or failure the user can act on.

    ``str(problem)`` is the one line shown; ``file``, ``line`` and ``node``
    say where in the configuration it applies (None when nowhere in
    particular).  A node gives its file and line when they are not given."""

    def __init__(self, message: str, *, file: Optional[str] = None,
                 line: Optional[int] = None, node: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.file = file if file is not None else getattr(node, "file", None)
        self.line = line if line is not None else getattr(node, "line", None)

    def __str__(self) -> str:
        return self.message

    @property
    def where(self) -> Optional[str]:
        """``file:line``, as nginx itself locates a directive."""
        if self.file is None:
            return None
        return self.file if self.line is None else f"{self.file}:{self.line}"


class NotInstalled(Problem):
    """No nginx to work with here: its binary or configuration is missing
    (certbot then says the plugin is not available)."""


class Misconfigured(Problem):
    """nginx refuses its configuration or did not take it (certbot's
    MisconfigurationError: certbot rolls the installation back)."""


class AlreadyPresent(Problem):
    """An enhancement asked for is there already (nothing to do)."""
