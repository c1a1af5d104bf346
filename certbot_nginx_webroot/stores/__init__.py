"""Challenge stores: where http-01 challenge files are put for nginx to serve.

The authenticate flow only puts a file, reads back what it put (the
self-check compares what nginx serves with it) and removes exactly what it
put.  To keep challenge files somewhere else than a local directory (on
every node of a cluster, in a container's volume), write one class with
the methods of ``ChallengeStore`` in a new module here and name it in
``REGISTRY``.  ``local`` (local.py) is a directory on this machine,
written without following symlinks.
"""
from typing import Any

from certbot_nginx_webroot import registry
from certbot_nginx_webroot.problems import Problem

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore


class ChallengeStoreError(Problem):
    """A challenge file cannot be put where nginx serves it."""


class ChallengeStore(Protocol):
    """One run's challenge files below one directory."""

    directory: str  # where the files go, as this machine names it

    def put(self, token: str, content: bytes) -> None:
        """Store the file for token; raise ChallengeStoreError if it cannot be."""

    def read(self, token: str) -> bytes:
        """What put stored for token (what nginx must serve)."""

    def remove_all(self) -> None:
        """Remove exactly what put made (files, and directories made for them)."""


# name -> "module:Class", imported only when chosen.
REGISTRY = {
    "local": "certbot_nginx_webroot.stores.local:LocalDirectory",
    "ssh": "certbot_nginx_webroot.stores.ssh:SshDirectory",
}


def get(kind: str) -> Any:
    """The store class registered as kind."""
    return registry.lookup(REGISTRY, kind, "challenge store")
