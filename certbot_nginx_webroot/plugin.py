"""The certbot plugin: wires the config model and nginx control to certbot.

As authenticator it answers http-01 from a webroot directory that nginx
serves through a persistent ``location ^~ /.well-known/acme-challenge/``,
inserted once.  As installer it sets ssl_certificate/ssl_certificate_key and
reloads nginx (SIGHUP), never restarting it.
"""
from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import ssl
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Tuple

from acme import challenges
from certbot import errors, interfaces, util
from certbot.display import util as display_util
from certbot.plugins import common
from certbot.plugins import util as plugin_util

if TYPE_CHECKING:
    from certbot_nginx_webroot.stores.local import LocalDirectory as ChallengeFiles
    from certbot_nginx_webroot.config import Config
    from certbot_nginx_webroot.effective import MappedPath


def _lazy_module(name: str):
    """name, imported on first use: certbot imports every installed plugin on
    every run, so this plugin's own modules (and their compiled regular
    expressions) load only when the plugin is used."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


certificates = _lazy_module("certbot_nginx_webroot.certificates")
challenge_files = _lazy_module("certbot_nginx_webroot.stores.local")
stores = _lazy_module("certbot_nginx_webroot.stores")
controllers = _lazy_module("certbot_nginx_webroot.controllers")
nginx_config = _lazy_module("certbot_nginx_webroot.config")
lookup = _lazy_module("certbot_nginx_webroot.lookup")
nginxctl = _lazy_module("certbot_nginx_webroot.controllers.local")
parser = _lazy_module("certbot_nginx_webroot.parser")
probes = _lazy_module("certbot_nginx_webroot.probes")
renewal_run = _lazy_module("certbot_nginx_webroot.renewal_run")
sites = _lazy_module("certbot_nginx_webroot.sites")
certificate_lines = _lazy_module("certbot_nginx_webroot.certificate_lines")
challenge_location = _lazy_module("certbot_nginx_webroot.challenge_location")
https_server = _lazy_module("certbot_nginx_webroot.https_server")
own_server = _lazy_module("certbot_nginx_webroot.own_server")
placement = _lazy_module("certbot_nginx_webroot.placement")
redirects = _lazy_module("certbot_nginx_webroot.redirects")
tls = _lazy_module("certbot_nginx_webroot.tls")

logger = logging.getLogger(__name__)

LIVE_TIMEOUT = 30.0
# After a completed reload the new configuration already takes every new
# connection; this only absorbs a slow filesystem or a busy machine.
SELF_CHECK_TIMEOUT = 5.0


def say(message: str) -> None:
    """One line to the user (the log only, when certbot's display is not
    set up, as in a library call)."""
    try:
        display_util.notify(message)
    except ValueError:
        logger.info(message)


def achall_name(achall: Any) -> str:
    """The identifier: a host name, or an IP address (certbot 5's --ip-address)."""
    identifier = getattr(achall, "identifier", None)
    return identifier.value if identifier is not None else achall.domain


def achall_host(achall: Any) -> str:
    """The Host header the CA sends for the identifier (an IPv6 address in
    brackets), which is also what nginx matches server_name against."""
    return lookup.request_host(achall_name(achall))


class NginxWebroot(common.Installer, interfaces.Authenticator, interfaces.RenewDeployer,
                   interfaces.GenericUpdater):
    """nginx-webroot: http-01 through a persistent webroot location; installs
    certificates and reloads nginx without downtime."""

    # One line in `certbot plugins` (which wraps at 80 columns after "Description: ").
    description = "nginx: persistent http-01 webroot location; install certs, reload"

    @classmethod
    def add_parser_arguments(cls, add: Callable[..., None]) -> None:
        # Directories are stored absolute: a renewal runs from cron's cwd (/).
        add("server-root", default="/etc/nginx", type=os.path.abspath,
            help="nginx configuration directory (holds nginx.conf)")
        add("ctl", default="nginx", help="nginx binary, a name on PATH or a path")
        add("path", default="/var/www/_letsencrypt", type=os.path.abspath,
            help="directory the challenge location serves files from")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config: Optional[Config] = None
        self._challenges: Optional[ChallengeFiles] = None  # this run's challenge files
        self._adopted_challenges: List[ChallengeFiles] = []  # in directories nginx serves
        self._tested_before_edit = False  # nginx -t passed on the unedited config
        self._pending_edit: Optional[str] = None  # checkpoint title, kept until served
        self._temporary_edit = False  # the pending edit is a dry run's, undone in cleanup
        # fullchain -> the names it must be served for (a name may have two:
        # an RSA and an ECDSA lineage)
        self._expected: Dict[str, List[str]] = {}
        self._lineage: Optional[str] = None  # the lineage certbot renew deploys
        self._live = False  # nginx runs what is on disk; nothing changed since
        self._kept_policy: set = set()  # blocks already said to keep their own TLS settings
        # (servers list it was read from, {(addr, port): listen ... proxy_protocol})
        self._proxy_listens: Tuple[object, Dict[Tuple[str, int], bool]] = (None, {})
        self._proxied_targets: set = set()  # (host, port) the self-check sent a PROXY header to

    # -- certbot plumbing -------------------------------------------------

    def more_info(self) -> str:
        return ("Serves http-01 challenges from {0} through a location inserted once "
                "into nginx's server blocks under {1}; installs certificates there and "
                "reloads nginx.".format(self.conf("path"), self.conf("server-root")))

    def prepare(self) -> None:
        self._find_nginx()
        self._lock_server_root()
        self._recover_interrupted_run()
        if self._renewing_as_installer():
            # Before certbot saves the new certificate: a run killed from
            # then until the reload leaves the reload owed on disk.
            domains = getattr(self.config, "domains", None) or []
            addresses = getattr(self.config, "ip_addresses", None) or []
            self._remember_owed_reload([str(n) for n in list(domains) + list(addresses)])
        try:
            self._tls_snippet(create=False)  # a newer shipped version replaces an unedited one
        except errors.PluginError as err:
            logger.warning("%s", err)

    def _find_nginx(self) -> None:
        if os.path.basename(self.conf("ctl")) == self.conf("ctl"):
            # A root crontab's PATH (/usr/bin:/bin) lacks /usr/sbin, where nginx is.
            plugin_util.path_surgery(self.conf("ctl"))
        try:
            self._nginx().binary()
        except controllers.NginxError as err:
            raise errors.NoInstallationError(str(err)) from err
        if not os.path.isfile(self._main_conf()):
            raise errors.NoInstallationError(
                f"no nginx configuration at {self._main_conf()}; "
                "set --nginx-webroot-server-root")

    def _lock_server_root(self) -> None:
        """Hold certbot's lock on the server root until certbot exits, so
        one run's read-edit-reload cycle is never interleaved with
        another's (two runs with their own config dirs are not serialized
        by certbot's own locks).  It is the lock file certbot's nginx plugin
        takes too, so the two plugins exclude each other."""
        server_root = self.conf("server-root")
        try:
            util.lock_dir_until_exit(server_root)
        except errors.LockError as err:
            raise errors.PluginError(
                f"cannot lock {server_root}: another certbot run is using this nginx "
                "configuration; rerun when it has finished") from err
        except OSError as err:  # a read-only server root: nothing here can edit it either
            logger.debug("Not locking %s: %s", server_root, err)

    def _recover_interrupted_run(self) -> None:
        """Undo what a run that was killed mid-way left unfinished (a dry
        run's temporary challenge location, an edit not yet proven served),
        as certbot's own nginx plugin does when it starts, and have nginx
        serve the files as restored.  certbot holds its work directory's
        lock, so no other run can still be using these checkpoints."""
        leftovers = [d for d in (self.config.temp_checkpoint_dir, self.config.in_progress_dir)
                     if os.path.isdir(d)]
        if not leftovers:
            return
        self._find_nginx()  # also on a plugin certbot has not prepared (generic_updates)
        self._lock_server_root()
        try:
            self.recovery_routine()
        except errors.ReverterError as err:
            raise errors.PluginError(
                f"cannot undo the unfinished changes of an interrupted run ({err}); see "
                f"{', '.join(leftovers)}") from err
        say("Undid the unfinished nginx configuration changes of an interrupted certbot run")
        nginx = self._nginx()
        try:
            nginx.test()
            nginx.master_pid()
        except controllers.NginxError as err:
            logger.warning("Not reloading nginx after undoing them: %s", err)
            return
        self._reload()

    def _webroot(self) -> str:
        return os.path.abspath(self.conf("path"))

    def _main_conf(self) -> str:
        return os.path.join(self.conf("server-root"), "nginx.conf")

    def _nginx(self) -> Any:
        return nginxctl.LocalNginx(self.conf("ctl"), self._main_conf())

    def _load(self) -> Config:
        """The parsed configuration, read once per run and edited in memory."""
        if self._config is None:
            try:
                self._config = nginx_config.Config.load(self._main_conf())
            except (parser.ParseError, nginx_config.ConfigError) as err:
                raise errors.PluginError(f"cannot read the nginx configuration: {err}") from err
        return self._config

    def _answering(self, name: str, port: int, use_default: bool = True) -> List[lookup.Match]:
        try:
            return sites.answering(self._load(), name, port, use_default)
        except sites.SiteError as err:
            raise errors.PluginError(str(err)) from err

    # -- authenticator ----------------------------------------------------

    def get_chall_pref(self, identifier: str) -> Iterable[type]:
        return [challenges.HTTP01]

    def auth_hint(self, failed_achalls: list) -> str:
        return ("The Certificate Authority could not download the challenge files that "
                f"nginx serves from {self.conf('path')}. Check that the names point to "
                f"this server and that port {self.config.http01_port} is reachable "
                "from the internet.")

    def perform(self, achalls: list) -> list:
        self._challenges = challenge_files.LocalDirectory(self._webroot())
        self._adopted_challenges = []
        try:
            responses = [self._write_challenge(achall) for achall in achalls]
            hosts = sorted({achall_host(a) for a in achalls})
            if self._all_served(achalls, {h: self._probe_targets(h) for h in hosts}):
                self._ca_must_pass(hosts)
            else:
                names = hosts
                self._nginx_must_run()  # before any edit: the edit would need a reload
                reloaded, adopted = self._ensure_challenge_locations(names)
                for served in sorted(adopted):
                    if served.path == self._challenges.directory:
                        continue
                    say(f"nginx serves challenges for {', '.join(adopted[served])} "
                        f"from {served.path}; writing them there")
                    files = challenge_files.LocalDirectory(served.base, served.below)
                    self._adopted_challenges.append(files)
                    for achall in achalls:
                        self._write_challenge(achall, files)
                targets = {name: self._probe_targets(name, from_config=True) for name in names}
                if not probes.wait_until(lambda: self._all_served(achalls, targets),
                                         SELF_CHECK_TIMEOUT if reloaded else 0):
                    self._nginx_must_run()
                    problems = self._not_served(achalls, targets)  # while the edit is live
                    self._undo_pending_edit()
                    # Hints name lines of the files as restored, which the user reads.
                    # Where the plugin found nginx serves them: the adopted
                    # directories, and its own webroot where it added a location.
                    written = {served.path for served in adopted} | \
                        ({self._challenges.directory} if reloaded or not adopted else set())
                    raise errors.PluginError(self._not_served_report(problems, targets,
                                                                     sorted(written)))
                self._finish_pending_edit()
                if not reloaded:
                    self._store_adopted_webroot(adopted, names)
        except BaseException:
            self._remove_challenge_files()
            self._undo_pending_edit()
            raise
        return responses

    def _ca_must_pass(self, names: List[str]) -> None:
        """The self-check asks from this machine; the CA asks from public
        addresses.  Where nginx's access checks let the one in and keep the
        other out (``allow 127.0.0.1; deny all;``), stop before the CA is
        asked.  A configuration the plugin cannot read is not judged: nginx
        serves the files, and this check only spares a failed validation."""
        try:
            config = self._load()
            problems = [challenge_location.ca_kept_out(config, match.server.ref, name)
                        for name in names
                        for match in sites.answering(config, name, self.config.http01_port)]
        except (errors.PluginError, sites.SiteError) as err:
            logger.warning("Not checking that nginx lets the CA in: %s", err)
            return
        problems = [problem for problem in problems if problem]
        if problems:
            raise errors.PluginError("; ".join(sorted(set(problems))) +
                                     "; the CA was not asked to validate")

    def _write_challenge(self, achall: Any, files: Optional[ChallengeFiles] = None) -> Any:
        response, validation = achall.response_and_validation()
        try:
            (files or self._challenges).put(achall.chall.encode("token"),
                                              validation.encode())
        except stores.ChallengeStoreError as err:
            raise errors.PluginError(str(err)) from err
        return response

    def _nginx_must_run(self) -> None:
        """Say so plainly when the reason nothing is served is that nginx is
        not running (the plugin never starts it)."""
        try:
            self._nginx().master_pid()
        except controllers.NginxError as err:
            raise errors.PluginError(
                f"{err}; start it with your service manager, then rerun") from err

    def _probe_targets(self, host: str, from_config: bool = False) -> List[Tuple[str, int]]:
        """Where the self-check asks for host's challenges.  An IP address is
        asked at that address, as the CA does (through loopback when it is
        not this machine's, e.g. behind NAT, where nginx sees a local address
        and its wildcard listen answers).  A name is asked on loopback, or
        where the config listens for it (from_config)."""
        port = self.config.http01_port
        ip = lookup.ip_address(host)
        if ip is not None:
            local = probes.is_local_address(str(ip))
            return [(lookup.listen_addr(ip) if local else
                     "[::]" if ip.version == 6 else "*", port)]
        return self._config_targets(host) if from_config else [("*", port)]

    def _config_targets(self, name: str) -> List[Tuple[str, int]]:
        """Where nginx listens for name on the HTTP port, per the config."""
        port = self.config.http01_port
        targets = {(m.listen.addr, port) for m in self._answering(name, port)}
        return sorted(targets) or [("*", port)]

    def _served(self, achall: Any, addr: str, port: int) -> Tuple[bool, str]:
        """Whether nginx serves achall's file on addr:port.  A plain request
        first: it needs no config, so renewals read none; when it is not
        answered and the config has that address listen with proxy_protocol
        (nginx behind HAProxy or a balancer, which drops a connection that
        does not start with a PROXY header), again with the header."""
        expected = self._challenges.read(achall.chall.encode("token"))
        # Once known, the header goes first (nginx logs each plain request
        # it drops as a "broken header").
        where = (probes.connect_host(addr), port)  # ("*" and "127.0.0.1" are one place)
        proxy = where in self._proxied_targets
        while True:
            try:
                status, body = probes.fetch(achall_host(achall), addr, port,
                                            achall.chall.path, proxy_protocol=proxy)
                break
            except probes.PROBE_ERRORS as err:  # e.g. something that is not HTTP answers
                if proxy or not self._wants_proxy_protocol(addr, port):
                    return False, f"{err.__class__.__name__}: {err}" + _proxied(proxy)
                proxy = True
                self._proxied_targets.add(where)
        if status == 200 and body.strip() == expected:
            return True, "ok"
        return False, (f"HTTP {status}" + ("" if status != 200 else ", wrong content")
                       + _proxied(proxy))

    def _wants_proxy_protocol(self, addr: str, port: int) -> bool:
        """Whether, per the config, nginx wants a PROXY protocol header on a
        probe's connection to addr:port (see lookup.wants_proxy_protocol)."""
        ip = lookup.ip_address(probes.connect_host(addr))
        if ip is None:  # a listen by host name: nginx resolved it; we do not
            return False
        servers = self._load().servers()
        if self._proxy_listens[0] is not servers:  # read again after an edit
            self._proxy_listens = (servers, {})
        known = self._proxy_listens[1]
        if (addr, port) not in known:
            known[(addr, port)] = lookup.wants_proxy_protocol(servers, ip, port)
        return known[(addr, port)]

    def _all_served(self, achalls: list, targets: Dict[str, List[Tuple[str, int]]]) -> bool:
        return all(self._served(a, addr, port)[0]
                   for a in achalls for addr, port in targets[achall_host(a)])

    def _not_served(self, achalls: list,
                    targets: Dict[str, List[Tuple[str, int]]]) -> List[str]:
        problems = []
        for achall in achalls:
            name = achall_host(achall)
            for addr, port in targets[name]:
                ok, detail = self._served(achall, addr, port)
                if not ok:
                    problems.append(f"http://{name}{achall.chall.path} via "
                                    f"{probes.connect_host(addr)}:{port}: {detail}")
        return problems

    def _not_served_report(self, problems: List[str],
                           targets: Dict[str, List[Tuple[str, int]]],
                           written: List[str]) -> str:
        hints = []
        config = self._load()
        for name in sorted(targets):
            for match in self._answering(name, self.config.http01_port):
                hints += [f"the server-level if at {sites.where(node)} may answer "
                          f"{name}'s challenges" for node in
                          challenge_location.server_level_ifs(config, match.server.ref)]
        return ("nginx does not serve the challenge files, so the CA was not asked to "
                "validate: " + "; ".join(problems + sorted(set(hints))) +
                f"; the files were written to {', '.join(written)}")

    def cleanup(self, achalls: list) -> None:
        try:
            self._remove_challenge_files()
        finally:
            self._revert_temporary_edit()

    def _revert_temporary_edit(self) -> None:
        """A dry run's challenge location, served for this run's challenges,
        is undone once they are over: the files as they were (certbot's
        temporary checkpoint), and nginx reloaded to serve them again."""
        if self._pending_edit is None or not self._temporary_edit:
            return
        self._pending_edit = None
        self._temporary_edit = False
        try:
            self.revert_temporary_config()
        except errors.ReverterError as err:
            raise errors.PluginError(
                f"cannot undo this dry run's challenge location: {err}") from err
        finally:
            self._config = None  # the files are as they were; the edited tree is not
        self._reload()

    def _remove_challenge_files(self) -> None:
        for files in [self._challenges] + self._adopted_challenges:
            if files is not None:
                files.remove_all()
        self._adopted_challenges = []

    def _ensure_challenge_locations(self, names: List[str]
                                    ) -> Tuple[bool, Dict[MappedPath, List[str]]]:
        """Make every block answering names serve challenges: a block
        whose own location for them serves a directory keeps it; the others
        get the plugin's location.  Returns whether that took an edit (and so
        a reload), and the directories adopted, with the names they serve.
        The edit stays pending until the self-check passes; a dry run's is
        temporary, undone in cleanup()."""
        config = self._load()
        root = self._webroot()
        http_port, https_port = self.config.http01_port, self.config.https_port
        adopted: Dict[MappedPath, List[str]] = {}
        try:
            homeless = []
            prefix = None
            for name in names:
                http = sites.answering(config, name, http_port)
                https = sites.answering(config, name, https_port, use_default=False)
                if not http and lookup.ip_address(name) is not None:
                    raise sites.SiteError(
                        f"nginx does not listen on {name} port {http_port}, where the CA "
                        f"asks for {name}'s challenges; add \"listen {name}:{http_port};\" "
                        "to the server block that should answer it")
                if not http:
                    homeless.append(name)
                if prefix is None:
                    prefix = self._nginx_prefix()
                served_dirs = [challenge_location.ensure_challenge_location(config, m.server.ref, root,
                                                                  name, prefix) for m in http]
                # HTTPS blocks need the location only for a CA that followed a
                # redirect; where every :80 block serves challenges already,
                # none is followed.
                if not http or None in served_dirs:
                    for match in https:
                        served_dirs.append(challenge_location.ensure_challenge_location(
                            config, match.server.ref, root, name, prefix))
                for served in served_dirs:
                    if served is not None and name not in adopted.setdefault(served, []):
                        adopted[served].append(name)
            if homeless:
                own_server.add_own_server(config, homeless, root, http_port)
        except sites.SiteError as err:
            self._config = None  # drop the half-edited tree; nothing was written
            raise errors.PluginError(str(err)) from err
        if not config.changed:
            return False, adopted
        # A dry run needs the location as much as a real run does, but keeps
        # nothing: certbot's temporary checkpoint (as its own nginx plugin's
        # challenge block), undone in cleanup(), and by recovery_routine()
        # after a crash.
        temporary = bool(self.config.dry_run)
        title = "nginx-webroot: challenge location"
        self._save_checkpoint(config, title, finalize=False, temporary=temporary)
        self._pending_edit = title
        self._temporary_edit = temporary
        self._reload()
        return True, adopted

    def _store_adopted_webroot(self, adopted: Dict[MappedPath, List[str]],
                               names: List[str]) -> None:
        """When every name is served from one adopted <dir>/.well-known/acme-challenge,
        make <dir> this run's --nginx-webroot-path: certbot stores it in the
        renewal conf, so renewals write the files where they are served at
        once, with no lookup of the location."""
        if len(adopted) != 1:
            return
        directory, served = next(iter(adopted.items()))
        if directory.below == challenges.HTTP01.URI_ROOT_PATH and \
                sorted(served) == sorted(names):
            setattr(self.config, self.dest("path"), directory.base)

    def _nginx_prefix(self) -> str:
        """nginx's prefix, which relative root and alias paths start from."""
        try:
            return self._nginx().compiled_paths()[0]
        except controllers.NginxError as err:
            raise errors.PluginError(str(err)) from err

    def _finish_pending_edit(self) -> None:
        if self._pending_edit is not None and not self._temporary_edit:
            self.finalize_checkpoint(self._pending_edit)
            self._pending_edit = None

    def _undo_pending_edit(self) -> None:
        """A refusal leaves no edit behind: restore the files the challenge
        location went into and have nginx serve them again."""
        if self._pending_edit is None:
            return
        self._pending_edit = None
        self._temporary_edit = False
        self.recovery_routine()
        self._config = None  # the files are as they were; the edited tree is not
        self._reload()

    # -- installer --------------------------------------------------------

    def get_all_names(self) -> Iterable[str]:
        return sites.plain_names(self._load())

    def deploy_cert(self, domain: str, cert_path: str, key_path: str,
                    chain_path: Optional[str] = None,
                    fullchain_path: Optional[str] = None) -> None:
        config = self._load()
        fullchain = fullchain_path or cert_path
        http_port, https_port = self.config.http01_port, self.config.https_port
        try:
            covered = certificates.names(cert_path) or [domain]
            key_type = certificates.key_type(key_path) or certificates.key_type(cert_path)
            # A challenge location of an older version answers every method:
            # installing edits and reloads anyway, a renewal never does.
            for match in (sites.answering(config, domain, http_port)
                          + sites.answering(config, domain, https_port, use_default=False)):
                challenge_location.limit_challenge_methods(config, match.server.ref)
            targets = placement.tls_blocks(config, domain, https_port) or \
                self._new_tls_targets(config, domain, covered)
            placed = []
            for server, port in targets:
                try:
                    self._install_pair(config, server, port, fullchain, key_path, key_type,
                                       domain, covered)
                except sites.SiteError:
                    # The block has domain through a wildcard or regex, and
                    # names the old certificate still serves: domain's own
                    # :80 block, made to serve HTTPS, takes it instead (an
                    # exact name wins over those on the HTTPS port too).
                    server = self._own_https_block(config, domain, server, port, covered)
                    if server is None:
                        raise
                    self._install_pair(config, server, port, fullchain, key_path, key_type,
                                       domain, covered)
                placed.append(server)
            self._secure(config, placed)
        except sites.SiteError as err:
            self._config = None  # drop the half-edited tree; nothing was written
            raise errors.PluginError(str(err)) from err
        self._expected.setdefault(fullchain, []).append(domain)
        self._live = False

    def _install_pair(self, config: Config, server: Any, port: int, fullchain: str,
                      key_path: str, key_type: Optional[str], domain: str,
                      covered: List[str]) -> None:
        pairs = certificate_lines.certificate_pairs(config, server)
        pair = self._pair_to_replace(pairs, fullchain, key_type, domain)
        # nginx picks between pairs by what the client supports, not by
        # name: a pair added beside the others is served for every name of
        # the block too, so each must keep working.
        for current, _ in (pairs[pair:pair + 1] if pair < len(pairs) else pairs):
            self._keep_other_names_working(config, server, current, fullchain, covered)
        certificate_lines.set_certificate(config, server, fullchain, key_path, port, pair)

    def _own_https_block(self, config: Config, domain: str, server: Any, port: int,
                         covered: List[str]) -> Optional[Any]:
        """An HTTPS block for domain alone, made from the :80 block that has
        domain as an exact server_name, when the TLS block that serves it
        on --https-port has it only through a wildcard or regex (so the
        new block takes it there); None when there is no such :80 block."""
        https_port = self.config.https_port
        names = next((s.names for s in config.servers() if s.ref is server), ())
        rank = sites.lookup.server_rank(domain.lower(), names)
        if port != https_port or rank is None or rank[0] == sites.lookup.EXACT:
            return None
        source = next((m for m in sites.answering(config, domain, self.config.http01_port)
                       if m.kind == sites.lookup.EXACT and m.server.ref is not server), None)
        if source is None:
            return None
        try:
            return https_server.make_https_server(config, source, domain, self.config.http01_port,
                                           https_port, self._http2_form(), covered)
        except sites.SiteError:
            return None

    def _new_tls_targets(self, config: Config, domain: str,
                         covered: List[str]) -> List[Tuple[Any, int]]:
        """(block, port) to install domain's certificate in when no TLS
        block answers domain by name, in this order:

        1. the TLS block of another name of the certificate that the block
           answering domain on the HTTP port answers by name too (one site,
           and an expanded certificate): domain is added to its server_name;
        2. when no HTTP block answers domain by name (a catch-all does), the
           TLS block nginx serves domain from on --https-port as the
           default_server (or first block) of its address, when it is this
           certificate's site: it answers another of its names by name;
        3. the HTTP block itself, given a TLS listen, or a copy of it
           (https_server.make_https_server);
        4. when that block only redirects to HTTPS on the same name, the TLS
           block nginx serves domain from on --https-port, default included.
        """
        http_port, https_port = self.config.http01_port, self.config.https_port
        http = sites.answering(config, domain, http_port)
        # The block named for the domain is the site; a catch-all that
        # answers it only on another address is not.
        source = next((m for m in http if m.kind != sites.lookup.DEFAULT),
                      http[0] if http else None)
        sibling = source and placement.tls_block_of_the_site(config, source, domain, covered,
                                                         https_port)
        if sibling is not None:
            placement.add_server_name(config, sibling, domain)
            return [(sibling, https_port)]
        defaults = placement.default_tls_blocks(config, domain, https_port)
        # A :80 block named for domain is its site, which 3. serves; without
        # one (a catch-all answers it), the site is the TLS block that serves
        # domain already.
        site = [node for node in defaults if placement.answers_another(config, node, domain, covered)]
        if site and (source is None or source.kind == sites.lookup.DEFAULT):
            return [(node, https_port) for node in site]
        if source is None:
            if defaults:
                return [(node, https_port) for node in defaults]
            raise sites.SiteError(
                f"no server block answers {domain} on port {http_port} or "
                f"{https_port}; add a server block with server_name {domain}")
        try:
            return [(https_server.make_https_server(config, source, domain, http_port, https_port,
                                             self._http2_form(), covered), https_port)]
        except sites.SiteError:
            if not defaults:
                raise
            return [(node, https_port) for node in defaults]

    @staticmethod
    def _pair_to_replace(pairs: List[Tuple[str, Optional[str]]], fullchain: str,
                         key_type: Optional[str], domain: str) -> int:
        """Which of a block's certificate pairs a new certificate replaces;
        len(pairs) to add it beside them.  nginx serves an RSA and an ECDSA
        pair side by side (two lineages, --key-type rsa and ecdsa): the new
        one replaces its own lineage's pair, else the pair of its key type,
        else a placeholder (a certificate not for domain, e.g. a snakeoil);
        a certificate of the other type for domain is kept."""
        if key_type is None:  # cannot tell: one certificate per block, as before
            return 0
        lineage = os.path.dirname(fullchain)
        kinds = [certificates.key_type(cert) for cert, _ in pairs]
        for test in (lambda i: os.path.dirname(pairs[i][0]) == lineage,
                     lambda i: kinds[i] == key_type,
                     lambda i: kinds[i] is None or not certificate_lines.covers(
                         certificates.names(pairs[i][0]), domain)):
            found = next((i for i in range(len(pairs)) if test(i)), None)
            if found is not None:
                return found
        return len(pairs)

    def _keep_other_names_working(self, config: Config, server: Any, current: str,
                                  fullchain: str, covered: List[str]) -> None:
        """Refuse to replace a block's certificate current when names the
        block answers are covered by it and not by the new one (another
        lineage, e.g. `-d a` then `-d b` on one block)."""
        if current == fullchain:
            return
        old = certificates.names(current)
        names = next((s.names for s in config.servers() if s.ref is server), ())
        lost = [n for n in names if certificate_lines.covers(old, n) and not certificate_lines.covers(covered, n)]
        # Names the block answers through a wildcard or regex server_name
        # cannot be listed from the block: those of the old certificate's
        # names (a wildcard: hosts it covers) the block matches count.
        lost += [n for n in certificate_lines.answered_certificate_names(names, old, covered)
                 if n not in lost]
        if lost:
            raise sites.SiteError(
                f"the server block at {sites.where(server)} serves {', '.join(lost)} with "
                f"{current}, which the new certificate does not cover; get one "
                f"certificate for all its names (-d {' -d '.join(sorted(set(covered + lost)))})"
                " or give the names their own server blocks")

    def _http2_form(self) -> Optional[str]:
        """How the installed nginx turns HTTP/2 on, from ``nginx -V``."""
        try:
            return self._nginx().build_info().http2_form
        except controllers.NginxError as err:
            raise errors.PluginError(str(err)) from err

    def _tls_snippet(self, create: bool) -> str:
        """The path of the TLS policy snippet in certbot's config directory,
        installed (create) or brought up to date if it is there; an edited
        one is left alone and reported once (certbot's own scheme)."""
        config_dir = os.path.abspath(self.config.config_dir)
        path = os.path.join(config_dir, tls.SNIPPET_NAME)
        if create or os.path.exists(path):
            try:
                os.makedirs(config_dir, exist_ok=True)
                common.install_version_controlled_file(
                    path, os.path.join(config_dir, tls.DIGEST_NAME), tls.SHIPPED_SNIPPET,
                    tls.SHIPPED_HASHES)
            except OSError as err:
                raise errors.PluginError(f"cannot install {path}: {err}") from err
        return path

    def _secure(self, config: Config, servers: List[Any]) -> None:
        """The TLS policy snippet in each of the HTTPS blocks, unless one
        keeps its own settings (said in one line)."""
        snippet = self._tls_snippet(create=True)
        for server in servers:
            kept = tls.ensure_policy(config, server, snippet)
            if kept and kept not in self._kept_policy:  # once, not once per name
                self._kept_policy.add(kept)
                logger.warning("%s", kept)

    def supported_enhancements(self) -> List[str]:
        # staple-ocsp is listed so that --staple-ocsp gets a reason, not a skip.
        return ["redirect", "ensure-http-header", "staple-ocsp"]

    def enhance(self, domain: str, enhancement: str,
                options: Optional[Any] = None) -> None:
        if enhancement == "staple-ocsp":
            raise errors.PluginError(tls.NO_STAPLING)
        if enhancement == "ensure-http-header":
            self._ensure_header(domain, options)
            return
        if enhancement != "redirect":
            raise errors.PluginError(f"unsupported enhancement: {enhancement}")
        config = self._load()
        http_port = self.config.http01_port
        try:
            # A catch-all that answers the name counts: its redirect is the name's.
            matches = sites.answering(config, domain, http_port)
            if not matches:
                raise sites.SiteError(f"no server block for {domain} on port {http_port}")
            added = [redirects.add_redirect(config, m, self.config.https_port, domain)
                     for m in matches]
        except sites.SiteError as err:
            self._config = None
            raise errors.PluginError(str(err)) from err
        if not any(added):
            raise errors.PluginEnhancementAlreadyPresent(f"{domain} already redirects to HTTPS")

    def _ensure_header(self, domain: str, option: Any) -> None:
        config = self._load()
        try:
            servers = tls.https_servers(config, domain, self.config.https_port)
            if not servers:
                raise sites.SiteError(f"no HTTPS server block answers {domain}; install a "
                                      "certificate for it first")
            results = [tls.ensure_header(config, server, option) for server in servers]
        except sites.SiteError as err:
            self._config = None
            raise errors.PluginError(str(err)) from err
        for _, skipped in results:
            for line in skipped:
                logger.warning("%s", line)
        if not any(added for added, _ in results):
            raise errors.PluginEnhancementAlreadyPresent(f"{domain} already sends {option}")

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
        self._test_before_first_edit()
        try:
            config.check_unchanged()
        except nginx_config.ConfigError as err:
            self._config = None
            raise errors.PluginError(f"{err}; nothing was written, rerun") from err
        new = [p for p in config.changed if not os.path.exists(p)]
        old = {os.path.realpath(p) for p in config.changed if os.path.exists(p)}
        if new:
            self.reverter.register_file_creation(temporary, *new)
        if old:
            self.add_to_checkpoint(old, notes, temporary)
        try:
            config.save()
        except (OSError, nginx_config.ConfigError) as err:
            self._config = None
            self.recovery_routine()
            raise errors.PluginError(f"cannot write the nginx configuration: {err}; "
                                     "the configuration was restored") from err
        try:
            self._nginx().test()
        except controllers.NginxError as err:
            self._config = None
            self.recovery_routine()
            raise errors.PluginError(f"{err}; the configuration was restored") from err
        if finalize:
            self.finalize_checkpoint(notes)

    def _test_before_first_edit(self) -> None:
        """nginx -t on the configuration as found, before the run's first
        write: a configuration that already fails is not the plugin's to
        edit, and must be left exactly as it is."""
        if self._tested_before_edit:
            return
        try:
            self._nginx().test()
        except controllers.NginxError as err:
            self._config = None
            raise errors.PluginError(
                f"the nginx configuration already fails before any change ({err}); "
                "nothing was changed; fix it, then rerun") from err
        self._tested_before_edit = True

    def rollback_checkpoints(self, rollback: int = 1) -> None:
        super().rollback_checkpoints(rollback)
        self._rolled_back()

    def recovery_routine(self) -> None:
        super().recovery_routine()
        self._rolled_back()

    def _rolled_back(self) -> None:
        """Forget what the undone edits meant: the tree read before them and
        the certificates they installed (restart() must not wait for those)."""
        self._config = None
        self._expected.clear()
        self._live = False

    def config_test(self) -> None:
        try:
            self._nginx().test()
        except controllers.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err

    def renew_deploy(self, lineage: interfaces.RenewableCert, *args: Any, **kwargs: Any) -> None:
        self._expected[lineage.fullchain_path] = list(lineage.names())
        self._lineage = lineage.lineagename
        self._live = False

    def restart(self) -> None:
        """Reload nginx (never start or restart it) and wait until the
        certificates it should serve are live.  During ``certbot renew`` the
        reload waits for the end of the run (renewal_run)."""
        if self._live:
            return
        if self._lineage is not None and self._in_renew_run():
            key = self._nginx_key()
            if renewal_run.defer(key, self._lineage, self._expected, self._flush_deferred):
                atexit.register(_flush_at_exit)
            for fullchain, names in self._expected.items():
                self._remember_owed_reload(names, fullchain)
            logger.info("Reload of nginx for %s deferred to the end of this renew run",
                        self._lineage)
            self._expected = {}
            return
        nginx = self._nginx()
        try:
            nginx.test()
            nginx.master_pid()
        except controllers.NotRunning as err:
            if self._expected:  # certbot rolls the install back, then calls restart again
                waiting = sorted({n for names in self._expected.values() for n in names})
                raise errors.MisconfigurationError(
                    f"{err}; so it cannot serve the new certificate for "
                    f"{', '.join(waiting)}") from err
            # Nothing to make live (e.g. after that rollback): the configuration
            # on disk passed nginx -t, and nginx reads it when it starts.
            logger.warning("%s. The configuration passed nginx -t and takes effect when "
                           "nginx starts; start it with your service manager.", err)
            return
        except controllers.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err
        self._reload()
        self._wait_certificates_live()

    def _in_renew_run(self) -> bool:
        return getattr(self.config, "verb", None) == "renew" and not self.config.dry_run

    def _renewing_as_installer(self) -> bool:
        """Whether certbot renew is renewing a lineage this plugin installs,
        and will tell it so (renew_deploy, generic_updates)."""
        return (self._in_renew_run() and getattr(self.config, "installer", None) == self.name
                and not getattr(self.config, "disable_renew_updates", False))

    # -- a reload owed by a run that did not live to make it ---------------

    def _owed_reloads_path(self) -> str:
        return os.path.join(self.config.work_dir, renewal_run.STATE_NAME)

    def _nginx_key(self) -> Tuple[str, str]:
        return (self.conf("ctl"), self._main_conf())

    def _remember_owed_reload(self, names: List[str], fullchain: Optional[str] = None) -> None:
        try:
            renewal_run.remember(self._owed_reloads_path(), self._nginx_key(), names, fullchain)
        except OSError as err:
            raise errors.PluginError(f"cannot record the nginx reload this renewal needs in "
                                     f"{self._owed_reloads_path()}: {err}") from err

    def _forget_owed_reload(self, served: Dict[str, List[str]]) -> None:
        try:
            renewal_run.forget(self._owed_reloads_path(), self._nginx_key(), served)
        except OSError as err:  # the next run finds them served, and forgets them then
            logger.warning("Cannot update %s: %s", self._owed_reloads_path(), err)

    def _honour_owed_reload(self, lineage: interfaces.RenewableCert) -> None:
        """An earlier run renewed lineage and ended before nginx served it
        (killed before its reload): reload in this run, with the lineages it
        renews, and only if nginx does not serve the lineage yet."""
        path, key = self._owed_reloads_path(), self._nginx_key()
        fullchain, names = lineage.fullchain_path, list(lineage.names())
        if not renewal_run.left_by_earlier_run(path, key, fullchain, names):
            return
        self._find_nginx()
        self._lock_server_root()
        if self._lineage_served(fullchain, names):
            logger.info("nginx already serves %s, which an earlier run renewed", fullchain)
            self._forget_owed_reload({fullchain: names})
            return
        say(f"An earlier certbot run renewed {lineage.lineagename} but ended before nginx "
            "was reloaded for it; reloading nginx in this run")
        if renewal_run.defer(key, lineage.lineagename, {fullchain: names},
                             self._flush_deferred):
            atexit.register(_flush_at_exit)

    def _lineage_served(self, fullchain: str, names: List[str]) -> bool:
        """Whether nginx serves fullchain's certificate for every name now
        (no waiting)."""
        try:
            expected = probes.first_certificate_der(fullchain)
        except OSError:
            return False
        key_type = certificates.key_type(fullchain)
        port = self.config.https_port
        for name in sorted(set(names)):
            if self._served_on_loopback(name, port, key_type, expected):
                continue
            try:
                if not all(serves(name, addr, target_port, key_type, expected)
                           for addr, target_port in self._tls_targets(name, fullchain)):
                    return False
            except probes.PROBE_ERRORS:
                return False
        return True

    def generic_updates(self, lineage: interfaces.RenewableCert, *args: Any,
                        **kwargs: Any) -> None:
        """certbot renew calls this after each lineage, renewed or not (on a
        plugin it has not prepared), also when nothing is due; after the
        last one of the run, reload once for every renewed lineage, and for
        every lineage an earlier run renewed but did not live to reload for.
        A failure raised here is a renewal failure: certbot names it and
        exits non-zero, before its post-hooks run."""
        # The timer's run, mostly with nothing due, is often the next run
        # after one that was killed: it undoes what that run left unfinished.
        self._recover_interrupted_run()
        self._honour_owed_reload(lineage)
        if not renewal_run.waiting():
            return
        last = renewal_run.last_lineage(self.config.renewal_configs_dir,
                                        getattr(self.config, "certname", None))
        if lineage.lineagename == last:
            renewal_run.flush_all()

    def _flush_deferred(self, lineages: List[str], expected: Dict[str, List[str]]) -> None:
        """The deferred reload: nginx -t, one reload, then every renewed
        certificate served (per name, with SNI)."""
        self._config = None  # later lineages may have edited the configuration
        self._expected.update(expected)
        reloaded = False
        try:
            self._nginx().test()
            self._reload()
            reloaded = True
            self._wait_certificates_live()
            logger.info("Reloaded nginx once for %d renewed lineage(s): %s", len(lineages),
                        ", ".join(lineages))
        except (errors.Error, controllers.NginxError) as err:
            self._expected.clear()
            then = ("nginx was reloaded; fix what it serves and reload it" if reloaded else
                    "nginx keeps serving the previous ones until the problem is fixed and "
                    "it is reloaded")
            raise errors.PluginError(
                f"renewed {len(lineages)} certificate(s) ({', '.join(lineages)}) but nginx "
                f"does not serve them: {err}; {then}") from err
        self._forget_owed_reload(expected)  # served: the reload is no longer owed

    def _reload(self) -> None:
        try:
            self._nginx().reload(LIVE_TIMEOUT)
        except controllers.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err
        self._live = True

    def _wait_certificates_live(self) -> None:
        port = self.config.https_port
        for fullchain, names in sorted(self._expected.items()):
            try:
                expected = probes.first_certificate_der(fullchain)
            except OSError as err:
                raise errors.PluginError(f"cannot read {fullchain}: {err}") from err
            key_type = certificates.key_type(fullchain)
            for name in sorted(set(names)):
                if self._served_on_loopback(name, port, key_type, expected):
                    continue
                # (address, port, whether nginx wants a PROXY protocol header there)
                targets = [(addr, target_port, self._wants_proxy_protocol(addr, target_port))
                           for addr, target_port in self._tls_targets(name, fullchain)]

                def serves_it(name=name, expected=expected, targets=targets) -> bool:
                    return all(serves(name, addr, target_port, key_type, expected,
                                      proxy_protocol=proxy)
                               for addr, target_port, proxy in targets)
                if not probes.wait_until(serves_it, LIVE_TIMEOUT):
                    where = ", ".join(f"{probes.connect_host(a)}:{p}{_proxied(proxy)}"
                                      for a, p, proxy in targets)
                    raise errors.PluginError(
                        f"nginx reloaded but does not serve {fullchain} for {name} on {where} "
                        f"after {LIVE_TIMEOUT:.0f} s; check its error log")
        self._expected.clear()

    @staticmethod
    def _served_on_loopback(name: str, port: int, key_type: Optional[str],
                            expected: Optional[bytes]) -> bool:
        """Whether nginx serves name expected on loopback.  After the reload
        only the new workers take connections, so a handshake settles the
        common case without parsing the config."""
        try:
            return serves(name, "*", port, key_type, expected, timeout=2)
        except probes.PROBE_ERRORS:
            return False

    def _tls_targets(self, name: str, fullchain: str) -> List[Tuple[str, int]]:
        """Where to wait for name to be served fullchain, per the config: the
        TLS listens of the blocks that use this certificate (a renewal does
        not know --https-port, as certbot does not store it), else the blocks
        answering on --https-port."""
        port = self.config.https_port
        targets = certificate_lines.certificate_listens(self._load(), name, fullchain)
        if not targets:
            matches = self._answering(name, port, use_default=False)
            targets = sorted({(m.listen.addr, port) for m in matches})
        return targets or [("*", port)]


def _flush_at_exit() -> None:
    """The deferred reload when the run ended before generic_updates saw its
    last lineage (it belonged to another installer, or failed).  certbot has
    chosen its exit status by now, so a failure here prints one line and
    forces a non-zero exit."""
    if not renewal_run.waiting():
        return
    try:
        renewal_run.flush_all()
    except Exception as err:  # noqa: BLE001 - the process is ending; say it and exit 1
        logger.error("%s", err)
        sys.stderr.write(f"{err}\n")
        sys.stderr.flush()
        logging.shutdown()
        os._exit(1)


def _proxied(proxy: bool) -> str:
    """What a probe's report adds when it sent a PROXY protocol header."""
    return " (sent with a PROXY protocol header: that listen has proxy_protocol)" if proxy else ""


def serves(name: str, addr: str, port: int, key_type: Optional[str],
           expected: Optional[bytes], timeout: float = 5.0,
           proxy_protocol: bool = False) -> bool:
    """Whether nginx serves the certificate expected (of key_type) for name
    on addr:port.  A block may hold an RSA and an ECDSA certificate and
    picks per client: a default handshake gets the ECDSA one; a TLS 1.2
    handshake offering only ciphers of the expected key type gets that
    one.  With proxy_protocol, each handshake starts with a PROXY protocol
    header."""
    first = probes.served_certificate(name, addr, port, timeout,
                                      proxy_protocol=proxy_protocol)
    if first == expected:
        return True
    if key_type is None:
        return False
    try:
        return probes.served_certificate(name, addr, port, timeout, key_type=key_type,
                                         proxy_protocol=proxy_protocol) == expected
    except ssl.SSLError as err:
        if err.reason != "TLSV1_ALERT_PROTOCOL_VERSION":
            raise
        if certificates.der_key_type(first) in (key_type, None):
            return False  # a certificate of this very key type, not the new one
        # TLS 1.3 only, and the default handshake got the other key type:
        # nginx serves this one only to clients that lack that type, which
        # Python's client cannot pretend to be.
        logger.warning("cannot check that %s serves %s: it refuses TLS 1.2, and TLS 1.3 "
                       "chooses the certificate by signature algorithms", name, key_type)
        return True
