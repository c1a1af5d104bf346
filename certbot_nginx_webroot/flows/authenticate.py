"""Authenticate: answer http-01 from files nginx serves through a location
inserted once.

Write the challenge files, ask nginx for them (selfcheck); when it serves
them already (every renewal after the first run) that is all: no config
read, no edit, no reload.  Else make every server block that answers the
names serve them (challenge location, an edit kept pending), reload, and
ask again; keep the edit only once nginx serves the files, else undo it and
say why.  cleanup removes exactly the files perform wrote, and undoes a dry
run's temporary location.
"""
from typing import Any, Callable, Dict, List, Optional, Tuple

from acme import challenges

from certbot_nginx_webroot import challenge_location, lookup, own_server, probes, sites
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.effective import MappedPath
from certbot_nginx_webroot.flows.selfcheck import SelfCheck, achall_host
from certbot_nginx_webroot.problems import Problem

# After a completed reload the new configuration already takes every new
# connection; this only absorbs a slow filesystem or a busy machine.
SELF_CHECK_TIMEOUT = 5.0

Adopted = Dict[MappedPath, List[str]]  # directory nginx serves challenges from -> names


class Authentication:
    """One run's http-01 challenges: the files, and the edit they may need."""

    def __init__(self, run: Any, transaction: Any, make_store: Callable[..., Any]) -> None:
        self.run = run
        self.transaction = transaction
        self.make_store = make_store  # (directory[, subdirectory]) -> a ChallengeStore
        self.selfcheck = SelfCheck(run)
        self.store: Optional[Any] = None  # this run's challenge files
        self.adopted_stores: List[Any] = []  # in directories nginx serves already
        # Set when every name is served from one adopted directory: the
        # edge stores it as the webroot option (see _adopted_webroot).
        self.adopted_webroot: Optional[str] = None

    def perform(self, achalls: list) -> list:
        self.store = self.make_store(self.run.options.webroot)
        self.adopted_stores = []
        try:
            responses = [self._put(achall, self.store) for achall in achalls]
            hosts = sorted({achall_host(a) for a in achalls})
            targets = {h: self.selfcheck.targets(h) for h in hosts}
            if self.selfcheck.all_served(self.store, achalls, targets):
                self.selfcheck.ca_must_pass(hosts)
            else:
                self._serve(achalls, hosts)
        except BaseException:
            self.remove_files()
            self.transaction.undo_pending()
            raise
        return responses

    def _serve(self, achalls: list, names: List[str]) -> None:
        """Make nginx serve the files for names, or undo and say why not."""
        self.must_run()  # before any edit: the edit would need a reload
        reloaded, adopted = self._ensure_challenge_locations(names)
        local_path = self.run.controller.local_path  # adopted paths are nginx's
        for served in sorted(adopted):
            if local_path(served.path) == self.store.directory:
                continue
            self.run.say(f"nginx serves challenges for {', '.join(adopted[served])} "
                         f"from {served.path}; writing them there")
            store = self.make_store(local_path(served.base), served.below)
            self.adopted_stores.append(store)
            for achall in achalls:
                self._put(achall, store)
        targets = {name: self.selfcheck.targets(name, from_config=True) for name in names}
        if not probes.wait_until(lambda: self.selfcheck.all_served(self.store, achalls, targets),
                                 SELF_CHECK_TIMEOUT if reloaded else 0):
            self.must_run()
            problems = self.selfcheck.not_served(self.store, achalls, targets)  # edit live
            self.transaction.undo_pending()
            # Hints name lines of the files as restored, which the user reads.
            # Where the plugin found nginx serves them: the adopted
            # directories, and its own webroot where it added a location.
            written = {local_path(served.path) for served in adopted} | \
                ({self.store.directory} if reloaded or not adopted else set())
            raise Problem(self.selfcheck.report(problems, targets, sorted(written)))
        self.transaction.finish_pending()
        if not reloaded:
            adopted_base = _adopted_webroot(adopted, names)
            if adopted_base is not None:
                self.adopted_webroot = local_path(adopted_base)

    def _put(self, achall: Any, store: Any) -> Any:
        response, validation = achall.response_and_validation()
        store.put(achall.chall.encode("token"), validation.encode())
        return response

    def must_run(self) -> None:
        """Say so plainly when the reason nothing is served is that nginx is
        not running (the plugin never starts it)."""
        try:
            self.run.controller.check_running()
        except NginxError as err:
            raise Problem(f"{err}; start it with your service manager, then rerun") from err

    def cleanup(self) -> None:
        try:
            self.remove_files()
        finally:
            self.transaction.revert_temporary()

    def remove_files(self) -> None:
        for store in [self.store] + self.adopted_stores:
            if store is not None:
                store.remove_all()
        self.adopted_stores = []

    def _ensure_challenge_locations(self, names: List[str]) -> Tuple[bool, Adopted]:
        """Make every block answering names serve challenges: a block
        whose own location for them serves a directory keeps it; the others
        get the plugin's location.  Returns whether that took an edit (and so
        a reload), and the directories adopted, with the names they serve.
        The edit stays pending until the self-check passes; a dry run's is
        temporary, undone in cleanup()."""
        adopted: Adopted = {}
        with self.run.editing() as config:
            homeless = [name for name in names if not self._serve_name(config, name, adopted)]
            if homeless:
                own_server.add_own_server(config, homeless, self._webroot_for_nginx(),
                                     self.run.options.http_port)
        if not config.changed:
            return False, adopted
        # A dry run needs the location as much as a real run does, but keeps
        # nothing: certbot's temporary checkpoint (as its own nginx plugin's
        # challenge block), undone in cleanup(), and by the edge's recovery
        # after a crash.
        self.transaction.begin_pending(config, "nginx-webroot: challenge location",
                                       temporary=bool(self.run.options.dry_run))
        return True, adopted

    def _serve_name(self, config: Any, name: str, adopted: Adopted) -> bool:
        """Give the blocks answering name a challenge location (or adopt
        theirs); False when no block answers name on the HTTP port."""
        http_port, https_port = self.run.options.http_port, self.run.options.https_port
        http = sites.answering(config, name, http_port)
        https = sites.answering(config, name, https_port, use_default=False)
        if not http and lookup.ip_address(name) is not None:
            raise sites.SiteError(
                f"nginx does not listen on {name} port {http_port}, where the CA "
                f"asks for {name}'s challenges; add \"listen {name}:{http_port};\" "
                "to the server block that should answer it")
        root, prefix = self._webroot_for_nginx(), self._nginx_prefix()
        served_dirs = [challenge_location.ensure_challenge_location(config, m.server.ref, root, name, prefix)
                       for m in http]
        # HTTPS blocks need the location only for a CA that followed a
        # redirect; where every :80 block serves challenges already, none
        # is followed.
        if not http or None in served_dirs:
            served_dirs += [challenge_location.ensure_challenge_location(config, m.server.ref, root, name,
                                                            prefix) for m in https]
        for served in served_dirs:
            if served is not None and name not in adopted.setdefault(served, []):
                adopted[served].append(name)
        return bool(http)

    def _webroot_for_nginx(self) -> str:
        """The webroot as nginx sees it: what the challenge location names."""
        return self.run.controller.nginx_path(self.run.options.webroot)

    def _nginx_prefix(self) -> str:
        """nginx's prefix, which relative root and alias paths start from."""
        try:
            return self.run.controller.prefix()
        except NginxError as err:
            raise Problem(str(err)) from err


def _adopted_webroot(adopted: Adopted, names: List[str]) -> Optional[str]:
    """When every name is served from one adopted <dir>/.well-known/acme-challenge,
    <dir>: stored as --nginx-webroot-path in the renewal configuration,
    renewals write the files where they are served at once, with no lookup
    of the location."""
    if len(adopted) != 1:
        return None
    directory, served = next(iter(adopted.items()))
    if directory.below == challenges.HTTP01.URI_ROOT_PATH and sorted(served) == sorted(names):
        return directory.base
    return None
