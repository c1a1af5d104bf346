"""The certbot plugin: wires the config model and nginx control to certbot.

As authenticator it answers http-01 from a webroot directory that nginx
serves through a persistent ``location ^~ /.well-known/acme-challenge/``,
inserted once.  As installer it sets ssl_certificate/ssl_certificate_key and
reloads nginx (SIGHUP), never restarting it.
"""
import fnmatch
import logging
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from acme import challenges
from certbot import errors, interfaces
from certbot.plugins import common

from certbot_nginx_webroot import edit, lookup, nginxctl, parser
from certbot_nginx_webroot.config import Config, ConfigError

logger = logging.getLogger(__name__)

CHALLENGE_PREFIX = "/" + challenges.HTTP01.URI_ROOT_PATH + "/"
OWN_FILE = "certbot-nginx-webroot.conf"
LIVE_TIMEOUT = 30.0
# After a completed reload the new configuration already takes every new
# connection; this only absorbs a slow filesystem or a busy machine.
SELF_CHECK_TIMEOUT = 5.0
_SWALLOWING = ("return", "rewrite", "if")


def challenge_location(path: str) -> str:
    """The location block nginx serves challenge files through."""
    return (f"location ^~ {CHALLENGE_PREFIX} {{  {edit.MARK}\n"
            f"    root {parser.quote(path)};  {edit.MARK}\n"
            f"    default_type text/plain;  {edit.MARK}\n"
            f"    try_files $uri =404;  {edit.MARK}\n"
            f"}}  {edit.MARK}")


def achall_name(achall: Any) -> str:
    identifier = getattr(achall, "identifier", None)
    return identifier.value if identifier is not None else achall.domain


class NginxWebroot(common.Installer, interfaces.Authenticator, interfaces.RenewDeployer):
    """nginx-webroot: http-01 through a persistent webroot location; installs
    certificates and reloads nginx without downtime."""

    description = ("Obtain certificates through a persistent webroot location in nginx "
                   "(no config edit or reload on renewal) and install them with a reload")

    @classmethod
    def add_parser_arguments(cls, add: Callable[..., None]) -> None:
        add("server-root", default="/etc/nginx",
            help="nginx configuration directory (holds nginx.conf)")
        add("ctl", default="nginx", help="nginx binary, a name on PATH or a path")
        add("path", default="/var/www/_letsencrypt",
            help="directory the challenge location serves files from")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config: Optional[Config] = None
        self._created_files: List[str] = []
        self._created_dirs: List[str] = []
        self._validations: Dict[str, bytes] = {}  # token -> file content
        self._expected: Dict[str, str] = {}  # name -> fullchain it must serve
        self._live = False  # nginx runs what is on disk; nothing changed since

    # -- certbot plumbing -------------------------------------------------

    def more_info(self) -> str:
        return ("Serves http-01 challenges from {0} through a location inserted once "
                "into nginx's server blocks under {1}; installs certificates there and "
                "reloads nginx.".format(self.conf("path"), self.conf("server-root")))

    def prepare(self) -> None:
        try:
            self._nginx().binary()
        except nginxctl.NginxError as err:
            raise errors.NoInstallationError(str(err)) from err
        if not os.path.isfile(self._main_conf()):
            raise errors.NoInstallationError(
                f"no nginx configuration at {self._main_conf()}; "
                "set --nginx-webroot-server-root")

    def _main_conf(self) -> str:
        return os.path.join(self.conf("server-root"), "nginx.conf")

    def _nginx(self) -> nginxctl.Nginx:
        return nginxctl.Nginx(self.conf("ctl"), self._main_conf())

    def _load(self) -> Config:
        """The parsed configuration, read once per run and edited in memory."""
        if self._config is None:
            try:
                self._config = Config.load(self._main_conf())
            except (parser.ParseError, ConfigError) as err:
                raise errors.PluginError(f"cannot read the nginx configuration: {err}") from err
        return self._config

    def _servers(self) -> List[lookup.Server]:
        return self._load().servers()

    def _answering(self, name: str, port: int, use_default: bool = True) -> List[lookup.Match]:
        try:
            return lookup.answering(self._servers(), name, port, use_default)
        except lookup.AmbiguousName as err:
            places = ", ".join(f"{s.ref.file}:{s.ref.line}" for s in err.servers)
            raise errors.PluginError(
                f"{err}: {places}; cannot tell which one to use (nginx uses the first "
                "and warns \"conflicting server name\"); remove the duplicate") from err

    # -- authenticator ----------------------------------------------------

    def get_chall_pref(self, identifier: str) -> Iterable[type]:
        return [challenges.HTTP01]

    def auth_hint(self, failed_achalls: list) -> str:
        return ("The Certificate Authority could not download the challenge files that "
                f"nginx serves from {self.conf('path')}. Check that the names point to "
                f"this server and that port {self.config.http01_port} is reachable "
                "from the internet.")

    def perform(self, achalls: list) -> list:
        responses = [self._write_challenge(achall) for achall in achalls]
        try:
            loopback = [("*", self.config.http01_port)]
            if not self._all_served(achalls, {achall_name(a): loopback for a in achalls}):
                names = sorted({achall_name(a) for a in achalls})
                reloaded = self._ensure_challenge_locations(names)
                targets = {name: self._config_targets(name) for name in names}
                if not nginxctl.wait_until(lambda: self._all_served(achalls, targets),
                                           SELF_CHECK_TIMEOUT if reloaded else 0):
                    raise errors.PluginError(self._not_served_report(achalls, targets))
        except BaseException:
            self._remove_challenge_files()
            raise
        return responses

    def _write_challenge(self, achall: Any) -> Any:
        response, validation = achall.response_and_validation()
        directory = os.path.join(self.conf("path"), challenges.HTTP01.URI_ROOT_PATH)
        old_umask = os.umask(0o022)
        try:
            missing = []
            probe = directory
            while not os.path.isdir(probe):
                missing.append(probe)
                probe = os.path.dirname(probe)
            for new_dir in reversed(missing):
                os.mkdir(new_dir, 0o755)
                self._created_dirs.append(new_dir)
            target = os.path.join(directory, achall.chall.encode("token"))
            with open(target, "wb") as f:
                f.write(validation.encode())
            self._validations[achall.chall.encode("token")] = validation.encode()
            os.chmod(target, 0o644)
        except OSError as err:
            raise errors.PluginError(f"cannot write the challenge file under "
                                     f"{self.conf('path')}: {err}") from err
        finally:
            os.umask(old_umask)
        self._created_files.append(target)
        return response

    def _config_targets(self, name: str) -> List[Tuple[str, int]]:
        """Where nginx listens for name on the HTTP port, per the config."""
        port = self.config.http01_port
        targets = {(m.listen.addr, port) for m in self._answering(name, port)}
        return sorted(targets) or [("*", port)]

    def _served(self, achall: Any, addr: str, port: int) -> Tuple[bool, str]:
        expected = self._validations[achall.chall.encode("token")]
        try:
            status, body = nginxctl.fetch(achall_name(achall), addr, port, achall.chall.path)
        except OSError as err:
            return False, f"{err.__class__.__name__}: {err}"
        if status == 200 and body.strip() == expected:
            return True, "ok"
        return False, f"HTTP {status}" + ("" if status != 200 else ", wrong content")

    def _all_served(self, achalls: list, targets: Dict[str, List[Tuple[str, int]]]) -> bool:
        return all(self._served(a, addr, port)[0]
                   for a in achalls for addr, port in targets[achall_name(a)])

    def _not_served_report(self, achalls: list,
                           targets: Dict[str, List[Tuple[str, int]]]) -> str:
        problems = []
        for achall in achalls:
            name = achall_name(achall)
            for addr, port in targets[name]:
                ok, detail = self._served(achall, addr, port)
                if not ok:
                    problems.append(f"http://{name}{achall.chall.path} via "
                                    f"{nginxctl.connect_host(addr)}:{port}: {detail}")
        return ("nginx does not serve the challenge files, so the CA was not asked to "
                "validate: " + "; ".join(problems))

    def cleanup(self, achalls: list) -> None:
        self._remove_challenge_files()

    def _remove_challenge_files(self) -> None:
        while self._created_files:
            path = self._created_files.pop()
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        self._validations.clear()
        while self._created_dirs:
            path = self._created_dirs.pop()
            try:
                os.rmdir(path)
            except OSError:
                logger.debug("Challenge directory %s was not empty; left it", path)

    def _ensure_challenge_locations(self, names: List[str]) -> bool:
        """Make every block answering names serve the challenge location;
        True when that took an edit (and so a reload)."""
        config = self._load()
        root = os.path.abspath(self.conf("path"))
        homeless = []
        for name in names:
            http = self._answering(name, self.config.http01_port)
            https = self._answering(name, self.config.https_port, use_default=False)
            if not http:
                homeless.append(name)
            for match in http + https:
                self._ensure_location(config, match.server.ref, root)
            for match in http:
                self._unswallow(config, match.server.ref)
        if homeless:
            self._add_own_server(config, homeless, root)
        if not config.changed:
            return False
        self._save_checkpoint(config, "nginx-webroot: challenge location", finalize=True)
        self._reload()
        return True

    def _ensure_location(self, config: Config, server: parser.Node, root: str) -> None:
        existing = served_challenge_dir(config, server)
        wanted = os.path.join(root, challenges.HTTP01.URI_ROOT_PATH)
        if existing is not None:
            node, served = existing
            if served is None:
                raise errors.PluginError(
                    f"the location at {node.file}:{node.line} answers the challenge path for "
                    f"the server block at {server.file}:{server.line} but sets no root; give "
                    f"it \"root {root};\" or remove it")
            if os.path.normpath(served) != os.path.normpath(wanted):
                raise errors.PluginError(
                    f"the server block at {server.file}:{server.line} already serves "
                    f"challenges from {served} (location at {node.file}:{node.line}); "
                    f"rerun with --nginx-webroot-path "
                    f"{served[:-len(challenges.HTTP01.URI_ROOT_PATH)].rstrip('/') or '/'}")
            return
        children = server.children
        index = next((i for i, n in enumerate(children) if n.name == "location"),
                     len(children))
        edit.insert(server, index, challenge_location(root),
                    config.file_of(server).newline, server.file)
        config.mark_changed(server)

    def _unswallow(self, config: Config, server: parser.Node) -> None:
        """Keep server-level redirects from answering the challenge first:
        they run before nginx picks a location."""
        swallowing = [i for i, n in enumerate(server.children) if swallows(n)]
        if not swallowing:
            return
        others = [n for n in server.children if n.name == "location"
                  and not is_challenge_location(n)]
        if others:
            raise errors.PluginError(
                f"the server block at {server.file}:{server.line} answers every request "
                f"at server level ({server.children[swallowing[0]].name} at line "
                f"{server.children[swallowing[0]].line}) and also has locations; move the "
                "server-level directive into \"location /\" so challenges can be served")
        moved = [i for i, n in enumerate(server.children) if n.name in _SWALLOWING]
        newline = config.file_of(server).newline
        body = "\n".join(parser.dump_node(server.children[i]) for i in moved)
        block = (f"location / {{  {edit.MARK}\n" + edit.nest(body, 1)
                 + f"\n}}  {edit.MARK}")
        for i in reversed(moved[1:]):
            edit.remove(server, i)
        edit.replace(server, moved[0], block, newline, server.file)
        config.mark_changed(server)

    def _add_own_server(self, config: Config, names: List[str], root: str) -> None:
        port = self.config.http01_port
        ipv6 = any(listen.ipv6 for s in self._servers() for listen in s.listens)
        lines = [f"server {{  {edit.MARK}", f"    listen {port};  {edit.MARK}"]
        if ipv6:
            lines.append(f"    listen [::]:{port};  {edit.MARK}")
        lines.append(f"    server_name {' '.join(names)};  {edit.MARK}")
        lines.extend("    " + line for line in challenge_location(root).split("\n"))
        lines += [f"    location / {{ return 404; }}  {edit.MARK}", f"}}  {edit.MARK}"]
        path, http = self._own_file(config)
        text = "\n".join(lines) + "\n"
        if path in config.files:  # the file is all ours: append
            text = parser.dump(config.files[path]).rstrip("\n") + "\n\n" + text
        elif http is not None:  # no include covers our file yet: add one
            edit.insert(http, len(http.children), f"include {path};  {edit.MARK}",
                        config.file_of(http).newline, http.file)
            config.mark_changed(http)
        config.add_file(path, parser.parse(text, path))

    def _own_file(self, config: Config) -> Tuple[str, Optional[parser.Node]]:
        """Where our own server blocks go: a file an existing http-level
        include already covers, else one we include ourselves."""
        https = list(config.http_blocks())
        if not https:
            raise errors.PluginError(f"no http block in {config.main_path}")
        for http in https:
            for node in http.children:
                if node.name == "include" and node.args and "*" in node.args[0]:
                    pattern = node.args[0]
                    if not os.path.isabs(pattern):
                        pattern = os.path.join(config.prefix, pattern)
                    directory = os.path.dirname(pattern)
                    candidate = os.path.join(directory, OWN_FILE)
                    if os.path.isdir(directory) and fnmatch.fnmatch(candidate, pattern):
                        return candidate, None
        path = os.path.join(config.prefix, OWN_FILE)
        if path in config.files:
            return path, None
        return path, https[0]

    # -- installer --------------------------------------------------------

    def get_all_names(self) -> Iterable[str]:
        names: Set[str] = set()
        for server in self._servers():
            for name in server.names:
                if name and not name.startswith(("~", "*", ".")) and not name.endswith("*") \
                        and "." in name and "$" not in name:
                    names.add(name.lower())
        return names

    def deploy_cert(self, domain: str, cert_path: str, key_path: str,
                    chain_path: Optional[str] = None,
                    fullchain_path: Optional[str] = None) -> None:
        config = self._load()
        fullchain = fullchain_path or cert_path
        port = self.config.https_port
        targets = [m.server.ref for m in self._answering(domain, port, use_default=False)]
        if not targets:
            targets = [self._make_https_server(config, domain)]
        for server in targets:
            self._set_certificate(config, server, fullchain, key_path)
        self._expected[domain] = fullchain
        self._live = False

    def _make_https_server(self, config: Config, domain: str) -> parser.Node:
        port = self.config.https_port
        http = self._answering(domain, self.config.http01_port)
        if not http:
            raise errors.PluginError(
                f"no server block answers {domain} on port {self.config.http01_port} or "
                f"{port}; add a server block with server_name {domain}")
        source = http[0]
        node = source.server.ref
        if redirects_to_https(node):
            raise errors.PluginError(
                f"{domain} has no server block on port {port}, and the one on port "
                f"{self.config.http01_port} ({node.file}:{node.line}) only redirects to "
                "HTTPS; add an HTTPS server block for it")
        conf = config.file_of(node)
        holder = config.holder(node)
        index = next(i for i, n in enumerate(holder.children) if n is node)
        copy = edit.copy_after(holder, index, conf.newline)
        listens = [i for i, n in enumerate(copy.children) if n.name == "listen"]
        addrs: List[str] = []
        for listen in source.server.listens:
            if listen.port == self.config.http01_port and listen.addr not in addrs:
                addrs.append(listen.addr)
        new_listens = "\n".join(
            f"listen {port if a == '*' else a + ':' + str(port)} ssl;  {edit.MARK}"
            for a in addrs or ["*"])
        for i in reversed(listens[1:]):
            edit.remove(copy, i)
        if listens:
            edit.replace(copy, listens[0], new_listens, conf.newline, copy.file)
        else:
            edit.insert(copy, 0, new_listens, conf.newline, copy.file)
        if source.kind == lookup.DEFAULT:  # a catch-all: the copy is for this name only
            names = [i for i, n in enumerate(copy.children) if n.name == "server_name"]
            for i in reversed(names[1:]):
                edit.remove(copy, i)
            if names:
                edit.set_args(copy, names[0], [domain])
            else:
                edit.insert(copy, 0, f"server_name {domain};  {edit.MARK}",
                            conf.newline, copy.file)
        edit.mark_line_after(copy, 0)  # the header line: the whole block is ours
        config.mark_changed(copy)
        return copy

    def _set_certificate(self, config: Config, server: parser.Node,
                         fullchain: str, key: str) -> None:
        newline = config.file_of(server).newline
        for i, node in enumerate(server.children):
            listen = lookup.parse_listen(node.args) if node.name == "listen" else None
            if listen and listen.port == self.config.https_port and not listen.ssl:
                edit.set_args(server, i, node.args + ["ssl"])
                config.mark_changed(server)
        for name, value in (("ssl_certificate", fullchain), ("ssl_certificate_key", key)):
            direct = [i for i, n in enumerate(server.children) if n.name == name]
            if not direct:
                inherited = config.directives(server, name)
                if inherited:
                    node = inherited[0]
                    raise errors.PluginError(
                        f"{name} for the server block at {server.file}:{server.line} is set "
                        f"in an included file ({node.file}:{node.line}) that other blocks "
                        "may share; move it into the server block")
                after = max((i for i, n in enumerate(server.children)
                             if n.name in ("listen", "server_name", "ssl_certificate")),
                            default=-1)
                edit.insert(server, after + 1, f"{name} {parser.quote(value)};  {edit.MARK}",
                            newline, server.file)
                config.mark_changed(server)
            elif server.children[direct[0]].args != [value]:
                edit.set_args(server, direct[0], [value])
                config.mark_changed(server)

    def supported_enhancements(self) -> List[str]:
        return ["redirect"]

    def enhance(self, domain: str, enhancement: str,
                options: Optional[Any] = None) -> None:
        if enhancement != "redirect":
            raise errors.PluginError(f"unsupported enhancement: {enhancement}")
        config = self._load()
        http_port, https_port = self.config.http01_port, self.config.https_port
        matches = self._answering(domain, http_port, use_default=False)
        if not matches:
            raise errors.PluginError(f"no server block for {domain} on port {http_port}")
        target = "https://$host" + ("" if https_port == 443 else f":{https_port}")
        for match in matches:
            server = match.server.ref
            if any(listen.port == https_port for listen in match.server.listens):
                raise errors.PluginError(
                    f"the server block at {server.file}:{server.line} serves both HTTP "
                    "and HTTPS; split it to add a redirect")
            if redirects_to_https(server):
                raise errors.PluginEnhancementAlreadyPresent(
                    f"{domain} already redirects to HTTPS")
            after = max((i for i, n in enumerate(server.children)
                         if n.name in ("listen", "server_name")), default=-1)
            edit.insert(server, after + 1,
                        f'if ($request_uri !~ "^{CHALLENGE_PREFIX}") {{  {edit.MARK}\n'
                        f"    return 301 {target}$request_uri;  {edit.MARK}\n"
                        f"}}  {edit.MARK}",
                        config.file_of(server).newline, server.file)
            config.mark_changed(server)

    def save(self, title: Optional[str] = None, temporary: bool = False) -> None:
        config = self._config
        if config is not None and config.changed:
            self._save_checkpoint(config, title or "nginx-webroot changes",
                                  finalize=False, temporary=temporary)
            self._live = False
        if title and not temporary:
            self.finalize_checkpoint(title)

    def _save_checkpoint(self, config: Config, notes: str, finalize: bool,
                         temporary: bool = False) -> None:
        new = [p for p in config.changed if not os.path.exists(p)]
        old = {os.path.realpath(p) for p in config.changed if os.path.exists(p)}
        if new:
            self.reverter.register_file_creation(temporary, *new)
        if old:
            self.add_to_checkpoint(old, notes, temporary)
        try:
            config.save()
        except OSError as err:
            self._config = None
            self.recovery_routine()
            raise errors.PluginError(f"cannot write the nginx configuration: {err}") from err
        try:
            self._nginx().test()
        except nginxctl.NginxError as err:
            self._config = None
            self.recovery_routine()
            raise errors.PluginError(f"{err}; the configuration was restored") from err
        if finalize:
            self.finalize_checkpoint(notes)

    def rollback_checkpoints(self, rollback: int = 1) -> None:
        super().rollback_checkpoints(rollback)
        self._config = None
        self._live = False

    def recovery_routine(self) -> None:
        super().recovery_routine()
        self._config = None

    def config_test(self) -> None:
        try:
            self._nginx().test()
        except nginxctl.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err

    def renew_deploy(self, lineage: interfaces.RenewableCert, *args: Any, **kwargs: Any) -> None:
        for name in lineage.names():
            self._expected[name] = lineage.fullchain_path
        self._live = False

    def restart(self) -> None:
        """Reload nginx (never start or restart it) and wait until the
        certificates it should serve are live."""
        if self._live:
            return
        try:
            self._nginx().test()
        except nginxctl.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err
        self._reload()
        self._wait_certificates_live()

    def _reload(self) -> None:
        try:
            self._nginx().reload(LIVE_TIMEOUT)
        except nginxctl.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err
        self._live = True

    def _wait_certificates_live(self) -> None:
        port = self.config.https_port
        for name, fullchain in sorted(self._expected.items()):
            try:
                expected = nginxctl.first_certificate_der(fullchain)
            except OSError as err:
                raise errors.PluginError(f"cannot read {fullchain}: {err}") from err
            targets = self._tls_targets(name)

            def serves_it(name=name, expected=expected, targets=targets) -> bool:
                return all(nginxctl.served_certificate(name, addr, port) == expected
                           for addr in targets)
            if not nginxctl.wait_until(serves_it, LIVE_TIMEOUT):
                raise errors.PluginError(
                    f"nginx reloaded but does not serve {fullchain} for {name} on port "
                    f"{port} after {LIVE_TIMEOUT:.0f} s; check its error log")
        self._expected.clear()

    def _tls_targets(self, name: str) -> List[str]:
        """Addresses to check: loopback when nginx answers there (no parse
        needed on renewal), else the addresses the config listens on."""
        try:
            nginxctl.served_certificate(name, "*", self.config.https_port, timeout=2)
            return ["*"]
        except OSError:
            pass
        matches = self._answering(name, self.config.https_port, use_default=False)
        return sorted({m.listen.addr for m in matches}) or ["*"]


def is_challenge_location(node: parser.Node) -> bool:
    return node.name == "location" and bool(node.args) and \
        node.args[-1].rstrip("/") == CHALLENGE_PREFIX.rstrip("/")


def served_challenge_dir(config: Config, server: parser.Node):
    """(location, directory) when server already has a prefix location that
    answers the challenge path (directory None when no root is set); else
    None."""
    best = None
    for node in config.expand(server.children):
        if node.name != "location" or node.children is None or not node.args:
            continue
        if len(node.args) == 2 and node.args[0] not in ("^~", "="):
            continue  # a regex location
        prefix = node.args[-1]
        if prefix == "/" or not CHALLENGE_PREFIX.startswith(prefix):
            continue
        if best is None or len(prefix) > len(best.args[-1]):
            best = node
    if best is None:
        return None
    rest = CHALLENGE_PREFIX[len(best.args[-1]):]
    for name in ("alias", "root"):
        found = config.directives(best, name)
        if found and found[0].args:
            base = found[0].args[0]
            served = os.path.join(base, rest) if name == "alias" else \
                os.path.join(base, CHALLENGE_PREFIX.lstrip("/"))
            return best, served
    roots = config.directives(server, "root")
    if roots and roots[0].args:
        return best, os.path.join(roots[0].args[0], CHALLENGE_PREFIX.lstrip("/"))
    return best, None  # nginx's compiled-in html root: not a directory we can name


def swallows(node: parser.Node) -> bool:
    """Would this server-level directive answer a challenge request before
    any location is chosen?"""
    if node.name == "return":
        return True
    if node.name == "rewrite":
        return len(node.args) > 1 and (node.args[1].startswith(("http://", "https://"))
                                       or node.args[-1] in ("redirect", "permanent"))
    if node.name == "if" and node.children is not None:
        if any("acme-challenge" in a for a in node.args):
            return False  # written to let challenges through
        return any(swallows(child) for child in node.children)
    return False


def redirects_to_https(server: parser.Node) -> bool:
    """Is this block's answer to / (at server level or in location /) a
    redirect to https?"""
    nodes = list(server.children)
    for node in server.children:
        if node.name == "location" and node.args == ["/"] and node.children is not None:
            nodes.extend(node.children)
    for node in nodes:
        if node.name == "return" and len(node.args) == 2 and node.args[0] in (
                "301", "302", "307", "308") and node.args[1].startswith("https://"):
            return True
        if node.name == "if" and node.children is not None and redirects_to_https(node):
            return True
    return False
