"""What every flow of one certbot run shares: the options, the nginx
(a controller), the network probes, and the configuration read once and
edited in memory."""
import contextlib
import logging
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from certbot_nginx_webroot import config as nginx_config
from certbot_nginx_webroot import lookup, parser, probes, sites
from certbot_nginx_webroot.problems import Problem

logger = logging.getLogger(__name__)


class Run:
    """One run's nginx: the controller that drives it, the probes that
    reach it, and its configuration, parsed once and edited in memory.

    options has the attributes the flows read (http_port, https_port,
    webroot, dry_run, work_dir), read as the run goes (the edge may change
    one in between, as it does for an adopted webroot); say tells the user
    one line."""

    def __init__(self, options: Any, controller: Any, net: Any,
                 say: Callable[[str], None] = logger.info) -> None:
        self.options = options
        self.controller = controller
        self.net = net  # probes: fetch, served_certificate, is_local_address, ...
        self.say = say
        self._config: Optional[nginx_config.Config] = None
        self._paths: Optional[NginxPaths] = None  # the image's files read once per run
        # (servers list it was read from, {(addr, port): listen ... proxy_protocol})
        self._proxy_listens: Tuple[object, Dict[Tuple[str, int], bool]] = (None, {})

    @property
    def parsed(self) -> bool:
        """Whether this run has read the configuration (a renewal reads none)."""
        return self._config is not None

    def loaded(self) -> Optional[nginx_config.Config]:
        """The configuration as read and edited so far; None when not read."""
        return self._config

    def config(self) -> nginx_config.Config:
        """The parsed configuration, read once per run and edited in memory."""
        if self._config is None:
            try:
                self._config = self._load()
            except (parser.ParseError, nginx_config.ConfigError) as err:
                raise Problem(f"cannot read the nginx configuration{self.where}: {err}",
                              file=err.file, line=err.line, node=err.node) from err
        return self._config

    # Where this run's nginx is, in a message ("" for this machine's; a
    # node's run says " on <node>").
    where = ""

    def _load(self) -> nginx_config.Config:
        """The configuration as nginx loads it, each file opened through the
        controller's mapping (NginxPaths)."""
        if self._paths is None:
            self._paths = NginxPaths(self.controller)
        return nginx_config.Config.load(self._paths.main_conf(), self._paths)

    def deliver(self, expected: Dict[str, List[str]]) -> None:
        """Put the certificates expected (fullchain -> names) where this
        nginx reads them, before it is tested and reloaded: nothing to do
        here, an nginx on this machine reads certbot's own files (a node's
        run copies them, flows/node.py)."""

    def forget_config(self) -> None:
        """Drop the tree: the files are as they were (undone), or were never
        written (a refused edit), so the next use reads them again."""
        self._config = None

    @contextlib.contextmanager
    def editing(self) -> Iterator[nginx_config.Config]:
        """The configuration to edit in memory; a Problem on the way drops
        the half-edited tree (nothing was written)."""
        config = self.config()
        try:
            yield config
        except Problem:
            self.forget_config()
            raise

    def answering(self, name: str, port: int, use_default: bool = True) -> List[lookup.Match]:
        """The server blocks nginx picks for name on port (sites.answering)."""
        try:
            return sites.answering(self.config(), name, port, use_default)
        except sites.SiteError as err:
            raise Problem(str(err)) from err

    def wants_proxy_protocol(self, addr: str, port: int) -> bool:
        """Whether, per the config, nginx wants a PROXY protocol header on a
        probe's connection to addr:port (see lookup.wants_proxy_protocol)."""
        ip = lookup.ip_address(probes.connect_host(addr))
        if ip is None:  # a listen by host name: nginx resolved it; we do not
            return False
        servers = self.config().servers()
        if self._proxy_listens[0] is not servers:  # read again after an edit
            self._proxy_listens = (servers, {})
        known = self._proxy_listens[1]
        if (addr, port) not in known:
            known[(addr, port)] = lookup.wants_proxy_protocol(servers, ip, port)
        return known[(addr, port)]


class NginxPaths:
    """A controller's paths as the configuration model reads them:
    nginx.conf as nginx sees it, this machine's path of a path nginx
    opens (local_path), and the files nginx loads from its image, on no
    volume (as ``nginx -T`` prints them, asked once, only when one is)."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self._image: Optional[Dict[str, str]] = None

    def main_conf(self) -> str:
        """nginx.conf as nginx sees it: a container's conf_path(), which may
        be in its image (main_conf, this machine's path, then has none)."""
        conf_path = getattr(self.controller, "conf_path", None)
        return conf_path() if callable(conf_path) else self.controller.main_conf

    def local_path(self, path: str) -> str:
        return self.controller.local_path(path)

    def nginx_path(self, path: str) -> str:
        return self.controller.nginx_path(path)

    def image_file(self, path: str) -> Optional[str]:
        return self._image_files().get(path)

    def image_paths(self) -> List[str]:
        return sorted(self._image_files())

    def _image_files(self) -> Dict[str, str]:
        if self._image is None:
            dump = getattr(self.controller, "config_dump", None)
            self._image = dump() if dump else {}
        return self._image
