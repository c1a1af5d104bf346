"""Controllers: "the nginx that serves these names", wherever it runs.

The flows never ask how nginx runs; they ask a controller.  A controller
is made once per certbot run (``create``) and lives for the whole run, so
what it learns (``nginx -V``, the master it checked) is learnt once.

To drive nginx somewhere new (in a container, on another machine), write
one class with the methods of ``Controller`` in a new module here and name
it in ``REGISTRY``: the flows, the edits and the certbot edge stay as they
are.  ``local`` (local.py) is an nginx process on this machine.
"""
from typing import Any, Mapping, Optional, Tuple

from certbot_nginx_webroot.build_info import BuildInfo
from certbot_nginx_webroot import registry
from certbot_nginx_webroot.problems import Problem

try:  # Python 3.8+
    from typing import Protocol
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore


class NginxError(Problem):
    """nginx is missing, rejects its configuration, or does not answer."""


class NotRunning(NginxError):
    """No master of this nginx runs; nothing was signalled."""


class Controller(Protocol):
    """The nginx that serves the names: how to test, reload and reach it."""

    # Says which nginx this is, stably across runs (a renewal run batches
    # reloads per identity, and a reload owed by a killed run is kept on
    # disk under it): equal identities are the same nginx.
    identity: Tuple[str, ...]
    main_conf: str  # nginx.conf, as this machine opens it

    def check_installed(self) -> None:
        """Raise problems.NotInstalled when this nginx cannot be driven
        from here at all (no binary, no configuration)."""

    def test(self) -> None:
        """``nginx -t``; raise NginxError with nginx's own complaint."""

    def build_info(self) -> BuildInfo:
        """``nginx -V``, asked once per run."""

    def prefix(self) -> str:
        """nginx's compiled prefix (relative root and alias paths start there)."""

    def check_running(self) -> None:
        """Raise NotRunning unless this nginx's master runs (checked, never
        trusted from a pid file alone)."""

    def reload(self, timeout: float) -> None:
        """Have the running master load the configuration on disk (SIGHUP,
        never a restart), and return once only the new workers take
        connections; raise NginxError otherwise."""

    def reach(self, addr: str, port: int) -> Tuple[str, int]:
        """Where a probe from this machine connects to reach nginx's listen
        addr:port (the same address notation as a listen directive)."""

    def local_path(self, path: str) -> str:
        """A path as nginx sees it, as this machine opens it."""

    def nginx_path(self, path: str) -> str:
        """A path on this machine, as nginx sees it (what goes into its
        configuration: the challenge directory, the certificates)."""


# name -> "module:Class", imported only when chosen.
REGISTRY = {
    "local": "certbot_nginx_webroot.controllers.local:LocalNginx",
    "container": "certbot_nginx_webroot.controllers.container:ContainerNginx",
    "ssh": "certbot_nginx_webroot.controllers.ssh:SshNginx",
}


def get(kind: str) -> Any:
    """The controller class registered as kind."""
    return registry.lookup(REGISTRY, kind, "nginx controller")


def create(kind: str, options: Mapping[str, Optional[str]]) -> Controller:
    """A controller of kind for this run, from the plugin's options (each
    class reads the ones it needs in its ``from_options``)."""
    return get(kind).from_options(options)
