"""The certbot edge: the plugin class certbot loads, and nothing else.

As authenticator it answers http-01 from a webroot directory that nginx
serves through a persistent ``location ^~ /.well-known/acme-challenge/``,
inserted once.  As installer it sets ssl_certificate/ssl_certificate_key and
reloads nginx (SIGHUP), never restarting it.

This module declares the options, maps each of certbot's interface calls to
a flow (flows/), and turns the project's errors (problems.Problem) into
certbot's, in one place (EDGE_ERRORS).  It is the only module that imports
certbot: what certbot knows (its lock, its Reverter, its display, the
order it renews lineages in) stays here.
"""
from __future__ import annotations

import atexit
import functools
import glob
import importlib.util
import logging
import os
import sys
from typing import Any, Callable, Dict, Iterable, List, Optional

from acme import challenges
from certbot import errors, interfaces, util
from certbot.display import util as display_util
from certbot.plugins import common
from certbot.plugins import util as plugin_util


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


authenticate = _lazy_module("certbot_nginx_webroot.flows.authenticate")
batch = _lazy_module("certbot_nginx_webroot.flows.batch")
controllers = _lazy_module("certbot_nginx_webroot.controllers")
enhance_flow = _lazy_module("certbot_nginx_webroot.flows.enhance")
fleet_flows = _lazy_module("certbot_nginx_webroot.flows.fleet")
node_flows = _lazy_module("certbot_nginx_webroot.flows.node")
openssh = _lazy_module("certbot_nginx_webroot.controllers.openssh")
golive = _lazy_module("certbot_nginx_webroot.flows.golive")
install = _lazy_module("certbot_nginx_webroot.flows.install")
owed = _lazy_module("certbot_nginx_webroot.flows.owed")
probes = _lazy_module("certbot_nginx_webroot.probes")
problems = _lazy_module("certbot_nginx_webroot.problems")
run_module = _lazy_module("certbot_nginx_webroot.flows.run")
sites = _lazy_module("certbot_nginx_webroot.sites")
stores = _lazy_module("certbot_nginx_webroot.stores")
tls = _lazy_module("certbot_nginx_webroot.tls")
transaction = _lazy_module("certbot_nginx_webroot.flows.transaction")

logger = logging.getLogger(__name__)

# One controller per nginx for the whole process: certbot makes a plugin
# object per lineage in a renew run, and what a controller learns (nginx -V,
# the pid file's place) holds for the run.
_CONTROLLERS: Dict[tuple, Any] = {}
# The directory locked for each nginx in a container (by identity), found
# once per process: certbot prepares a plugin object per role and lineage.
_LOCK_DIRS: Dict[tuple, Optional[str]] = {}


def say(message: str) -> None:
    """One line to the user (the log only, when certbot's display is not
    set up, as in a library call)."""
    try:
        display_util.notify(message)
    except ValueError:
        logger.info(message)


def certbot_error(problem: Exception) -> errors.Error:
    """The certbot error for one of the project's Problems: the first
    matching entry of EDGE_ERRORS, else a PluginError."""
    edge_errors = [
        (problems.NotInstalled, errors.NoInstallationError),
        (problems.Misconfigured, errors.MisconfigurationError),
        (problems.AlreadyPresent, errors.PluginEnhancementAlreadyPresent),
    ]
    kind = next((theirs for ours, theirs in edge_errors if isinstance(problem, ours)),
                errors.PluginError)
    return kind(str(problem))


def at_the_edge(method: Callable) -> Callable:
    """certbot's interface call method, with the project's errors raised
    as certbot's (the one place they are translated)."""
    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except problems.Problem as problem:
            raise certbot_error(problem) from problem
    return translated


class RunOptions:
    """certbot's configuration, under the names the flows read."""

    def __init__(self, config: Any, path_dest: str) -> None:
        self._config = config
        self._path_dest = path_dest

    @property
    def webroot(self) -> str:
        return os.path.abspath(getattr(self._config, self._path_dest))

    @property
    def http_port(self) -> int:
        return self._config.http01_port

    @property
    def https_port(self) -> int:
        return self._config.https_port

    @property
    def dry_run(self) -> bool:
        return bool(self._config.dry_run)

    @property
    def work_dir(self) -> str:
        return self._config.work_dir


class Checkpoints:
    """certbot's Reverter, as the edit transaction uses it."""

    def __init__(self, installer: "NginxWebroot") -> None:
        self._installer = installer

    def add(self, paths: Any, notes: str, temporary: bool) -> None:
        self._installer.add_to_checkpoint(paths, notes, temporary)

    def register_creation(self, temporary: bool, *paths: str) -> None:
        self._installer.reverter.register_file_creation(temporary, *paths)

    def finalize(self, title: str) -> None:
        self._installer.finalize_checkpoint(title)

    def recover(self) -> None:
        self._installer.recovery_routine()

    def revert_temporary(self, context: str) -> None:
        try:
            self._installer.revert_temporary_config()
        except errors.ReverterError as err:
            raise problems.Problem(f"{context}: {err}") from err


class _FleetEdge:
    """The edge for several nginx nodes behind a load balancer (issue 23),
    mixed into NginxWebroot: when nodes are named (--nginx-webroot-node),
    certbot's calls listed in FLEET_CALLS go to the _fleet_<name> methods
    here (fleet_aware), which hand them to flows/fleet.py."""

    @classmethod
    def _add_fleet_arguments(cls, add: Callable[..., None]) -> None:
        # append: repeatable; certbot stores the list in the renewal
        # configuration and hands it back through this type (node_option).
        add("node", action="append", type=node_option, default=None, metavar="DEST",
            help="an nginx node behind your load balancer, as an ssh destination "
                 "(user@host, or a Host of your ssh configuration); repeat it for every "
                 "node. Challenge files, configuration edits and certificates then go to "
                 "every node over ssh, and --nginx-webroot-server-root, -ctl and -path "
                 "name the nodes' paths")
        add("ssh-config", default=None, type=os.path.abspath, metavar="FILE",
            help="ssh configuration file for reaching the nodes (ssh -F); by default "
                 "the user's own")

    def _nodes(self) -> List[str]:
        """The nodes named, as ssh destinations."""
        return node_list(getattr(self.config, self.dest("node"), None))

    def _fleet_wired(self) -> Any:
        """The flows over every node: one NodeRun per node, its controller
        one per process (shared ssh connections, closed at exit)."""
        if self._flows is None:
            options = RunOptions(self.config, self.dest("path"))
            runs = [node_flows.NodeRun(options, self._node_controller(node),
                                       self._net or probes, say)
                    for node in self._nodes()]
            store = stores.get("ssh")
            self._flows = fleet_flows.FleetFlows(
                runs, lambda run: functools.partial(store, run.controller.runner,
                                                    run.destination),
                self._tls_snippet, self._in_renew_run)
        return self._flows

    def _node_controller(self, node: str) -> Any:
        if self._given_controller is not None:  # tests: a callable node -> controller
            return self._given_controller(node)
        ssh_config = self.conf("ssh-config")
        runner_key = ("ssh-runner", ssh_config)
        if runner_key not in _CONTROLLERS:
            runner = openssh.OpenSsh(options=["-F", ssh_config] if ssh_config else [],
                                     share_connections=True)
            atexit.register(runner.close)
            _CONTROLLERS[runner_key] = runner
        conf = os.path.join(self.conf("server-root"), "nginx.conf")
        key = ("ssh", node, conf, self.conf("ctl"), ssh_config)
        if key not in _CONTROLLERS:
            _CONTROLLERS[key] = controllers.get("ssh")(node, conf, self.conf("ctl"),
                                                       runner=_CONTROLLERS[runner_key])
        return _CONTROLLERS[key]

    @at_the_edge
    def _fleet_prepare(self) -> None:
        """Every node reachable and its host key known, before the CA is
        asked and before any node is touched (flows/fleet.FleetFlows.check)."""
        if getattr(self.config, self.dest("container"), None):
            raise problems.Problem("--nginx-webroot-node and --nginx-webroot-container name "
                                   "different kinds of nginx; give one of them")
        self._wired().check()
        if self._renewing_as_installer():
            domains = getattr(self.config, "domains", None) or []
            self._remember_owed_reload([str(n) for n in domains])
        try:
            self._tls_snippet(False)
        except problems.Problem as err:
            logger.warning("%s", err)

    def _fleet_recover_interrupted_run(self) -> None:
        """Nothing: the nodes' edits are not certbot's checkpoints (flows/node.py)."""

    @at_the_edge
    def _fleet_get_all_names(self) -> Iterable[str]:
        return self._wired().all_names()

    @at_the_edge
    def _fleet_enhance(self, domain: str, enhancement: str,
                       options: Optional[Any] = None) -> None:
        self._wired().enhance(enhance_flow.enhance, domain, enhancement, options)

    @at_the_edge
    def _fleet_save(self, title: Optional[str] = None, temporary: bool = False) -> None:
        self._wired().save(title or "nginx-webroot changes", temporary)

    def _fleet_rolled_back(self) -> None:
        self._wired().recover()

    def _fleet_config_test(self) -> None:
        try:
            self._wired().test()
        except controllers.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err

    def _fleet_renew_deploy(self, lineage: interfaces.RenewableCert, *args: Any,
                            **kwargs: Any) -> None:
        self._lineage = lineage.lineagename
        self._wired().expect(lineage.fullchain_path, list(lineage.names()))

    @at_the_edge
    def _fleet_restart(self) -> None:
        """During certbot renew every node waits for the end of the run
        (one reload per node, flows/batch.py); else each node goes live now."""
        fleet = self._wired()
        if fleet.live():
            return
        if self._lineage is not None and self._in_renew_run():
            for fullchain, names in fleet.expected().items():
                self._remember_owed_reload(names, fullchain)
            if fleet.defer(self._lineage):
                atexit.register(_flush_at_exit)
            return
        fleet.go_live()

    def _fleet_remember_owed_reload(self, names: List[str],
                                    fullchain: Optional[str] = None) -> None:
        """One entry per node: each node owes the reload until it serves it."""
        runs = self._wired().runs
        path = owed.state_path(runs[0])
        try:
            for run in runs:
                owed.remember_at(path, run.controller.identity, names, fullchain)
        except OSError as err:
            raise errors.PluginError(f"cannot record the nginx reloads this renewal needs "
                                     f"in {path}: {err}") from err

    def _fleet_honour_owed_reload(self, lineage: interfaces.RenewableCert) -> None:
        """An earlier run renewed lineage and some node did not get it
        (down, killed run): that node gets the files, a reload and the
        check at the end of this run, even when nothing is due."""
        fullchain, names = lineage.fullchain_path, list(lineage.names())
        behind = []
        for run in self._wired().runs:
            if not owed.left_at(owed.state_path(run), run.controller.identity,
                                fullchain, names):
                continue
            try:
                served = golive.GoLive(run).lineage_served(fullchain, names)
            except problems.Problem:
                served = False
            if served:
                owed.forget(run, {fullchain: names})
                continue
            behind.append(run.destination)
            if batch.BATCH.add(run, lineage.lineagename, {fullchain: names}):
                atexit.register(_flush_at_exit)
        if behind:
            say(f"{', '.join(behind)} did not get {lineage.lineagename}, which an earlier "
                "run renewed; bringing it up to date in this run")


# certbot's calls (and the edge's own steps) the fleet answers when nodes are named.
FLEET_CALLS = ("_wired", "prepare", "_recover_interrupted_run", "get_all_names", "enhance",
               "save", "_rolled_back", "config_test", "renew_deploy", "restart",
               "_remember_owed_reload", "_honour_owed_reload")


def fleet_aware(cls: type) -> type:
    """cls with each of FLEET_CALLS going to its _fleet_ method when
    nodes are named, and to the local nginx's method otherwise."""
    for name in FLEET_CALLS:
        setattr(cls, name, _fleet_when_nodes(getattr(cls, name), "_fleet_" + name.lstrip("_")))
    return cls


def _fleet_when_nodes(local: Callable, fleet_name: str) -> Callable:
    @functools.wraps(local)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._nodes():
            return getattr(self, fleet_name)(*args, **kwargs)
        return local(self, *args, **kwargs)
    return call


class ContainerEdge:
    """The edge's part for nginx in a Docker or Podman container (issue 22):
    its options, the controller they choose, and what is checked before
    anything changes.  Mixed into NginxWebroot."""

    @classmethod
    def _add_container_arguments(cls, add: Callable[..., None]) -> None:
        """nginx in a Docker or Podman container (issue 22)."""
        add("container", default=None,
            help="the Docker or Podman container nginx runs in, by its name (as compose "
                 "names it); its configuration, the challenge directory and the "
                 "certificates are reached through the container's volumes")
        add("engine", default=None, help="docker or podman; default: the one found")

    def _in_container(self) -> bool:
        return bool(self._container_option("container"))

    def _container_option(self, name: str) -> Optional[str]:
        # (a configuration made before these options existed has none)
        return getattr(self.config, self.dest(name), None)

    def _controller_options(self) -> tuple:
        """(controller kind, its options) chosen by the options."""
        if self._in_container():
            return "container", {"container": self._container_option("container"),
                                 "engine": self._container_option("engine")}
        return "local", {"ctl": self.conf("ctl"), "server_root": self.conf("server-root")}

    def _found_engine(self) -> bool:
        """The engine's CLI on PATH (a root crontab's PATH lacks
        /usr/local/bin), before the controller copies the environment;
        False for a local nginx."""
        if not self._in_container():
            return False
        named = self._container_option("engine")
        for engine in [named] if named else ["docker", "podman"]:
            if os.path.basename(engine) == engine:
                plugin_util.path_surgery(engine)
        return True

    def _check_container_mounts(self) -> None:
        """Before anything is written or asked of the CA: nginx in the
        container must see the challenge directory (as authenticator) and
        certbot's live/ and archive/ (as installer), else the controller's
        Problem names the mount to add."""
        if not self._in_container():
            return
        controller = self._controller
        if self._plays("authenticator"):
            controller.nginx_path(self.conf("path"))
        if self._plays("installer"):
            config_dir = os.path.abspath(self.config.config_dir)
            for lineage_dir in ("live", "archive"):
                try:
                    controller.nginx_path(os.path.join(config_dir, lineage_dir))
                except problems.Problem:
                    controller.nginx_path(config_dir)  # the mount to advise, when missing
                    raise

    def _plays(self, role: str) -> bool:
        """Whether this run uses the plugin as role (authenticator or
        installer); True when certbot has not said."""
        if role == "installer" and getattr(self.config, "verb", None) == "certonly":
            return False
        chosen = getattr(self.config, role, None) or getattr(self.config, "configurator", None)
        return chosen in (None, self.name)

    def _lock_dir(self) -> Optional[str]:
        """The directory certbot's lock is taken on: --server-root; for nginx
        in a container, the directory on this machine that holds the
        configuration it loads: its nginx.conf's, else (the official
        image's nginx.conf is in the image) that of the first file it loads
        from a volume; None when none is on a volume (nothing to edit)."""
        if not self._in_container():
            return self.conf("server-root")
        identity = self._controller.identity
        if identity not in _LOCK_DIRS:
            _LOCK_DIRS[identity] = self._configuration_dir()
        return _LOCK_DIRS[identity]

    def _configuration_dir(self) -> Optional[str]:
        controller = self._controller
        conf_dir = os.path.dirname(controller.conf_path())
        try:
            return controller.local_path(conf_dir)
        except problems.Problem:
            pass
        for path in sorted(controller.config_dump()):
            try:
                return os.path.dirname(controller.local_path(path))
            except problems.Problem:
                continue
        return None


@fleet_aware
class NginxWebroot(_FleetEdge, ContainerEdge, common.Installer, interfaces.Authenticator,
                   interfaces.RenewDeployer, interfaces.GenericUpdater):
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
        cls._add_fleet_arguments(add)
        cls._add_container_arguments(add)

    def __init__(self, *args: Any, controller: Any = None, net: Any = None,
                 **kwargs: Any) -> None:
        """controller (the nginx to drive) and net (the probes) are made
        from the options when not handed in (tests hand in fakes)."""
        super().__init__(*args, **kwargs)
        self._given_controller = controller
        self._net = net
        self._flows: Optional[Any] = None
        self._lineage: Optional[str] = None  # the lineage certbot renew deploys

    # -- this run's flows, made on first use ------------------------------

    @property
    def _controller(self) -> Any:
        if self._given_controller is None:
            kind, options = self._controller_options()
            key = (kind,) + tuple(sorted(options.items()))
            if key not in _CONTROLLERS:
                _CONTROLLERS[key] = controllers.create(kind, options)
            self._given_controller = _CONTROLLERS[key]
        return self._given_controller

    @property
    def _run(self) -> Any:
        return self._wired().run

    @property
    def _golive(self) -> Any:
        return self._wired().golive

    def _wired(self) -> Any:
        if self._flows is None:
            run = run_module.Run(RunOptions(self.config, self.dest("path")), self._controller,
                                 self._net or probes, say)
            live = golive.GoLive(run)
            edits = transaction.EditTransaction(run, Checkpoints(self), live.reload)
            self._flows = _Flows(
                run=run, golive=live, transaction=edits,
                auth=authenticate.Authentication(run, edits, stores.get("local")),
                install=install.Installation(run, live, self._tls_snippet))
        return self._flows

    # -- certbot plumbing -------------------------------------------------

    def more_info(self) -> str:
        return ("Serves http-01 challenges from {0} through a location inserted once "
                "into nginx's server blocks under {1}; installs certificates there and "
                "reloads nginx.".format(self.conf("path"), self.conf("server-root")))

    @at_the_edge
    def prepare(self) -> None:
        self._find_nginx()
        self._check_container_mounts()
        self._lock_server_root()
        self._recover_interrupted_run()
        if self._renewing_as_installer():
            # Before certbot saves the new certificate: a run killed from
            # then until the reload leaves the reload owed on disk.
            domains = getattr(self.config, "domains", None) or []
            addresses = getattr(self.config, "ip_addresses", None) or []
            self._remember_owed_reload([str(n) for n in list(domains) + list(addresses)])
        try:
            self._tls_snippet(False)  # a newer shipped version replaces an unedited one
        except problems.Problem as err:
            logger.warning("%s", err)

    def _find_nginx(self) -> None:
        if not self._found_engine() and os.path.basename(self.conf("ctl")) == self.conf("ctl"):
            # A root crontab's PATH (/usr/bin:/bin) lacks /usr/sbin, where nginx is.
            plugin_util.path_surgery(self.conf("ctl"))
        self._controller.check_installed()

    def _lock_server_root(self) -> None:
        server_root = self._lock_dir()  # --server-root; for a container, see ContainerEdge
        if server_root is not None:
            lock_until_exit(server_root)

    def _tls_snippet(self, create: bool) -> str:
        return tls_snippet(self.config.config_dir, create)

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
        try:
            self._controller.test()
            self._controller.check_running()
        except controllers.NginxError as err:
            logger.warning("Not reloading nginx after undoing them: %s", err)
            return
        self._golive.reload()

    # -- authenticator ----------------------------------------------------

    def get_chall_pref(self, identifier: str) -> Iterable[type]:
        return [challenges.HTTP01]

    def auth_hint(self, failed_achalls: list) -> str:
        return ("The Certificate Authority could not download the challenge files that "
                f"nginx serves from {self.conf('path')}. Check that the names point to "
                f"this server and that port {self.config.http01_port} is reachable "
                "from the internet.")

    @at_the_edge
    def perform(self, achalls: list) -> list:
        auth = self._wired().auth
        responses = auth.perform(achalls)
        if auth.adopted_webroot is not None:
            # certbot stores it in the renewal configuration: renewals
            # write the files where nginx serves them, with no lookup.
            setattr(self.config, self.dest("path"), auth.adopted_webroot)
        return responses

    @at_the_edge
    def cleanup(self, achalls: list) -> None:
        self._wired().auth.cleanup()

    # -- installer --------------------------------------------------------

    @at_the_edge
    def get_all_names(self) -> Iterable[str]:
        return sites.plain_names(self._run.config())

    @at_the_edge
    def deploy_cert(self, domain: str, cert_path: str, key_path: str,
                    chain_path: Optional[str] = None,
                    fullchain_path: Optional[str] = None) -> None:
        self._wired().install.deploy_cert(domain, cert_path, key_path, fullchain_path)

    def supported_enhancements(self) -> List[str]:
        # staple-ocsp is listed so that --staple-ocsp gets a reason, not a skip.
        return list(enhance_flow.ENHANCEMENTS)

    @at_the_edge
    def enhance(self, domain: str, enhancement: str,
                options: Optional[Any] = None) -> None:
        enhance_flow.enhance(self._run, domain, enhancement, options)

    @at_the_edge
    def save(self, title: Optional[str] = None, temporary: bool = False) -> None:
        config = self._run.loaded()
        if config is not None and config.changed:
            self._wired().transaction.save(config, title or "nginx-webroot changes",
                                           finalize=False, temporary=temporary)
            self._golive.changed()
        if title and not temporary:
            self.finalize_checkpoint(title)

    def rollback_checkpoints(self, rollback: int = 1) -> None:
        super().rollback_checkpoints(rollback)
        self._rolled_back()

    def recovery_routine(self) -> None:
        super().recovery_routine()
        self._rolled_back()

    def _rolled_back(self) -> None:
        """Forget what the undone edits meant: the tree read before them and
        the certificates they installed (restart() must not wait for those)."""
        self._run.forget_config()
        self._golive.forget()

    def config_test(self) -> None:
        try:
            self._controller.test()
        except controllers.NginxError as err:
            raise errors.MisconfigurationError(str(err)) from err

    def renew_deploy(self, lineage: interfaces.RenewableCert, *args: Any, **kwargs: Any) -> None:
        self._golive.expected[lineage.fullchain_path] = list(lineage.names())
        self._golive.changed()
        self._lineage = lineage.lineagename

    @at_the_edge
    def restart(self) -> None:
        """Reload nginx (never start or restart it) and wait until the
        certificates it should serve are live.  During ``certbot renew`` the
        reload waits for the end of the run (flows/batch.py)."""
        live = self._golive
        if live.live:
            return
        if self._lineage is not None and self._in_renew_run():
            self._defer_to_end_of_run(self._lineage, dict(live.expected))
            for fullchain, names in live.expected.items():
                self._remember_owed_reload(names, fullchain)
            logger.info("Reload of nginx for %s deferred to the end of this renew run",
                        self._lineage)
            live.expected = {}
            return
        try:
            self._controller.test()
            self._controller.check_running()
        except controllers.NotRunning as err:
            if live.expected:  # certbot rolls the install back, then calls restart again
                waiting = sorted({n for names in live.expected.values() for n in names})
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
        live.reload()
        live.wait_certificates_live()

    def _in_renew_run(self) -> bool:
        return getattr(self.config, "verb", None) == "renew" and not self.config.dry_run

    def _renewing_as_installer(self) -> bool:
        """Whether certbot renew is renewing a lineage this plugin installs,
        and will tell it so (renew_deploy, generic_updates)."""
        return (self._in_renew_run() and getattr(self.config, "installer", None) == self.name
                and not getattr(self.config, "disable_renew_updates", False))

    # -- one reload per renew run, and the reloads a killed run owes ------

    def _defer_to_end_of_run(self, lineage: str, expected: dict) -> None:
        if batch.BATCH.add(self._run, lineage, expected):
            atexit.register(_flush_at_exit)

    def _remember_owed_reload(self, names: List[str], fullchain: Optional[str] = None) -> None:
        path = owed.state_path(self._run)
        try:
            owed.remember_at(path, self._controller.identity, names, fullchain)
        except OSError as err:
            raise errors.PluginError(f"cannot record the nginx reload this renewal needs in "
                                     f"{path}: {err}") from err

    def _honour_owed_reload(self, lineage: interfaces.RenewableCert) -> None:
        """An earlier run renewed lineage and ended before nginx served it
        (killed before its reload): reload in this run, with the lineages it
        renews, and only if nginx does not serve the lineage yet."""
        fullchain, names = lineage.fullchain_path, list(lineage.names())
        if not owed.left_at(owed.state_path(self._run), self._controller.identity,
                            fullchain, names):
            return
        self._find_nginx()
        self._lock_server_root()
        if self._golive.lineage_served(fullchain, names):
            logger.info("nginx already serves %s, which an earlier run renewed", fullchain)
            owed.forget(self._run, {fullchain: names})
            return
        say(f"An earlier certbot run renewed {lineage.lineagename} but ended before nginx "
            "was reloaded for it; reloading nginx in this run")
        self._defer_to_end_of_run(lineage.lineagename, {fullchain: names})

    @at_the_edge
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
        if not batch.BATCH.lineages():
            return
        last = last_lineage(self.config.renewal_configs_dir,
                            getattr(self.config, "certname", None))
        if lineage.lineagename == last:
            batch.BATCH.flush_all()


class _Flows:
    """The flows of one plugin object, sharing one Run."""

    def __init__(self, **flows: Any) -> None:
        self.__dict__.update(flows)


def node_option(value: Any) -> Any:
    """The type of --nginx-webroot-node: one destination from the command
    line; the stored list when certbot reads the renewal configuration back
    (it casts the whole stored value with the option's type)."""
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return str(value)


def node_list(value: Any) -> List[str]:
    """The nodes an option value names: a destination, a list of them, or
    comma-separated ones (a hand-edited renewal configuration), each once."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    found: List[str] = []
    for item in items:
        for node in str(item).split(","):
            if node.strip() and node.strip() not in found:
                found.append(node.strip())
    return found


def lock_until_exit(server_root: str) -> None:
    """Hold certbot's lock on the server root until certbot exits, so one
    run's read-edit-reload cycle is never interleaved with another's (two
    runs with their own config dirs are not serialized by certbot's own
    locks).  It is the lock file certbot's nginx plugin takes too, so the
    two plugins exclude each other."""
    try:
        util.lock_dir_until_exit(server_root)
    except errors.LockError as err:
        raise errors.PluginError(
            f"cannot lock {server_root}: another certbot run is using this nginx "
            "configuration; rerun when it has finished") from err
    except OSError as err:  # a read-only server root: nothing here can edit it either
        logger.debug("Not locking %s: %s", server_root, err)


def tls_snippet(config_dir: str, create: bool) -> str:
    """The path of the TLS policy snippet in certbot's config directory,
    installed (create) or brought up to date if it is there; an edited
    one is left alone and reported once (certbot's own scheme)."""
    config_dir = os.path.abspath(config_dir)
    path = os.path.join(config_dir, tls.SNIPPET_NAME)
    if create or os.path.exists(path):
        try:
            os.makedirs(config_dir, exist_ok=True)
            common.install_version_controlled_file(
                path, os.path.join(config_dir, tls.DIGEST_NAME), tls.SHIPPED_SNIPPET,
                tls.SHIPPED_HASHES)
        except OSError as err:
            raise problems.Problem(f"cannot install {path}: {err}") from err
    return path


def last_lineage(renewal_configs_dir: str, certname: Optional[str]) -> Optional[str]:
    """The lineage certbot renew handles last: the one --cert-name names, else
    the last renewal configuration in sorted order (certbot reads
    ``renewal/*.conf`` sorted by name)."""
    if certname:
        return certname
    files = sorted(glob.glob(os.path.join(renewal_configs_dir, "*.conf")))
    return os.path.basename(files[-1])[:-len(".conf")] if files else None


def _flush_at_exit() -> None:
    """The deferred reload when the run ended before generic_updates saw its
    last lineage (it belonged to another installer, or failed).  certbot has
    chosen its exit status by now, so a failure here prints one line and
    forces a non-zero exit."""
    if not batch.BATCH.lineages():
        return
    try:
        batch.BATCH.flush_all()
    except Exception as err:  # noqa: BLE001 - the process is ending; say it and exit 1
        logger.error("%s", err)
        sys.stderr.write(f"{err}\n")
        sys.stderr.flush()
        logging.shutdown()
        os._exit(1)
