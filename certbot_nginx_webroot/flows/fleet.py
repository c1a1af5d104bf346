"""Several nginx nodes behind a load balancer, driven from one certbot run
(issue 23).  Each node is a NodeRun (flows/node.py) with the flows a local
nginx has: authenticate, install, go live; this module runs them on every
node and keeps the run all-or-nothing across nodes.

- Challenges: each file is written to every node (stores/ssh.py through the
  store maker), so whichever node the balancer hands the CA's request to
  answers it, and a renewal needs no edit and no reload on any node.  Each
  node is asked directly at its own address before the CA is asked; a node
  that does not serve the file is named.  The first run's challenge
  location is the local flow's edit, made in each node's own configuration;
  if any node refuses, every node is put back.
- Reachability, before the CA is asked (check): an unknown or changed host
  key stops the run before any node is touched.  A node ssh cannot reach
  that still answers HTTP stops it too (the balancer may hand it the CA's
  request, and its file cannot be written); one that answers nothing is
  down: it is left out of this run, named, and owes the renewal.
- Certificates: deploy_cert edits each node's configuration as for a local
  nginx and copies the lineage's fullchain and key to each node at the paths
  that configuration names; save writes every node or, when one refuses, none.
"""
import logging
import os
from typing import Any, Callable, Dict, List, Optional

from certbot_nginx_webroot import probes, sites
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.controllers.openssh import SshError
from certbot_nginx_webroot.flows import batch
from certbot_nginx_webroot.flows.authenticate import Authentication
from certbot_nginx_webroot.flows.golive import GoLive
from certbot_nginx_webroot.flows.install import Installation
from certbot_nginx_webroot.flows.node import NodeRun, NodeTransaction
from certbot_nginx_webroot.problems import Misconfigured, NotInstalled, Problem

logger = logging.getLogger(__name__)

HTTP_PROBE_TIMEOUT = 3.0


class Node:
    """One node's run and flows."""

    def __init__(self, run: NodeRun, make_store: Callable[..., Any],
                 tls_snippet: Callable[[bool], str]) -> None:
        self.run = run
        self.golive = GoLive(run)
        self.transaction = NodeTransaction(run, self.golive.reload)
        self.auth = Authentication(run, self.transaction, make_store)
        self.install = Installation(run, self.golive, tls_snippet)

    @property
    def name(self) -> str:
        return self.run.destination


def named(node: Node, err: Exception) -> Problem:
    """err, said of node (once)."""
    text = str(err)
    return Problem(text if node.name in text else f"{node.name}: {text}")


def ssh_failure(err: BaseException) -> Optional[SshError]:
    """The ssh failure behind err, if ssh itself failed."""
    while err is not None and not isinstance(err, SshError):
        err = err.__cause__
    return err


def refused_host_key(err: SshError) -> bool:
    """ssh refused the node's host key (unknown or changed): never accepted."""
    return "host key" in str(err).lower() or "host identification" in str(err).lower()


class FleetFlows:
    """The flows of one run over every node; renewing() says whether this is
    a ``certbot renew`` run (a node down then owes the renewal, instead of
    stopping the run)."""

    def __init__(self, runs: List[NodeRun], make_store: Callable[[NodeRun], Any],
                 tls_snippet: Callable[[bool], str], renewing: Callable[[], bool],
                 make_node: Callable[..., Node] = Node) -> None:
        self.nodes = [make_node(run, make_store(run), tls_snippet) for run in runs]
        self.tls_snippet = tls_snippet
        self.renewing = renewing
        self.down: List[str] = []  # nodes left out of this run (neither ssh nor HTTP)
        self.adopted_webroot: Optional[str] = None
        self.auth = self  # the edge's auth.perform / cleanup / adopted_webroot
        self.install = self  # the edge's install.deploy_cert

    @property
    def runs(self) -> List[NodeRun]:
        return [node.run for node in self.nodes]

    def up(self) -> List[Node]:
        return [node for node in self.nodes if node.name not in self.down]

    # -- before anything: every node reachable, every host key known ---------

    def check(self) -> None:
        """Every node's nginx can be driven over ssh; see the module doc for
        a node that cannot.  Touches nothing on any node."""
        for node in self.nodes:
            try:
                node.run.controller.check_installed()
            except NotInstalled as err:
                failure = ssh_failure(err)
                if failure is None or refused_host_key(failure):
                    raise NotInstalled(f"{err}; no node was changed and the CA was not "
                                       "asked") from err
                self._unreachable(node, failure)

    def _unreachable(self, node: Node, err: SshError) -> None:
        address = node.run.controller.address()
        port = node.run.options.http_port
        try:
            node.run.net.fetch("localhost", address, port, "/", timeout=HTTP_PROBE_TIMEOUT)
        except probes.PROBE_ERRORS:
            self.down.append(node.name)
            node.run.say(f"{node.name} is down (no ssh: {err}; nothing answers on "
                         f"{address}:{port}); left out of this run, it is brought up to "
                         "date by the next run")
            return
        raise Problem(f"{node.name} answers HTTP on {address}:{port} but ssh cannot reach it "
                      f"({err}): the balancer may send the CA there, where the challenge "
                      "file cannot be written; the CA was not asked")

    # -- authenticator ----------------------------------------------------------

    def perform(self, achalls: list) -> list:
        """Every node up serves every challenge file, or none keeps anything."""
        done: List[Node] = []
        responses: list = []
        try:
            for node in self.up():
                try:
                    responses = node.auth.perform(achalls)
                except Problem as err:
                    raise named(node, err) from err
                done.append(node)
        except BaseException:
            for node in done:
                node.auth.remove_files()
                node.transaction.undo_pending()
            raise
        for node in done:  # every node passed: their edits stay
            node.transaction.keep()
        adopted = {node.auth.adopted_webroot for node in done}
        self.adopted_webroot = adopted.pop() if len(adopted) == 1 else None
        return responses

    def cleanup(self, achalls: Optional[list] = None) -> None:
        failure: Optional[Exception] = None
        for node in self.up():
            try:
                node.auth.cleanup()
            except Problem as err:
                failure = failure or named(node, err)
        if failure is not None:
            raise failure

    # -- installer --------------------------------------------------------------

    def all_names(self) -> List[str]:
        names: set = set()
        for node in self.up():
            names.update(sites.plain_names(node.run.config()))
        return sorted(names)

    def deploy_cert(self, domain: str, cert_path: str, key_path: str,
                    fullchain_path: Optional[str] = None) -> None:
        """Each node's configuration edited as a local one's, and the
        certificate and key copied to each node before its nginx -t."""
        if self.down and not self.renewing():
            raise Problem(f"cannot install on {', '.join(self.down)}, which is down; "
                          "start it, then rerun")
        snippet = self.tls_snippet(False)
        for node in self.up():
            try:
                node.install.deploy_cert(domain, cert_path, key_path, fullchain_path)
                node.run.send(fullchain_path or cert_path)
                node.run.send(key_path, key=True)
                if os.path.exists(snippet):
                    node.run.send(snippet)
            except Problem as err:
                raise named(node, err) from err

    def save(self, title: str, temporary: bool) -> None:
        """Every node's edits written and tested, or none: a node that
        refuses puts back those saved before it."""
        saved: List[Node] = []
        for node in self.up():
            config = node.run.loaded()
            if config is None or not config.changed:
                continue
            try:
                node.transaction.save(config, title, temporary=temporary)
            except Problem as err:
                for earlier in saved:
                    earlier.transaction.restore()
                restored = f"; {', '.join(n.name for n in saved)} put back too" if saved else ""
                raise named(node, Problem(f"{err}{restored}")) from err
            node.golive.changed()
            saved.append(node)
        if title and not temporary:
            for node in self.nodes:
                node.transaction.finalize()

    def recover(self) -> None:
        """certbot undoes the run's unfinished changes: on every node."""
        for node in self.nodes:
            node.transaction.restore()
            node.golive.forget()

    def enhance(self, enhance: Callable[..., None], *args: Any) -> None:
        """An enhancement (flows/enhance.enhance) in every node's configuration."""
        for node in self.up():
            try:
                enhance(node.run, *args)
            except Problem as err:
                raise named(node, err) from err

    def test(self) -> None:
        for node in self.up():
            node.run.controller.test()

    def expect(self, fullchain: str, names: List[str]) -> None:
        for node in self.nodes:
            node.golive.expected[fullchain] = list(names)
            node.golive.changed()

    def expected(self) -> Dict[str, List[str]]:
        found: Dict[str, List[str]] = {}
        for node in self.nodes:
            for fullchain, names in node.golive.expected.items():
                found.setdefault(fullchain, [])
                found[fullchain] += [n for n in names if n not in found[fullchain]]
        return found

    def live(self) -> bool:
        return all(node.golive.live for node in self.up())

    def go_live(self) -> None:
        """Each node up: nginx -t, one reload, then proven to serve what
        it must (TLS handshake with SNI at the node's own address).  Every
        node is tried; the ones that fail are named together."""
        failures = []
        for node in self.up():
            if node.golive.live:
                continue
            try:
                node.run.controller.test()
                node.run.controller.check_running()
                node.golive.reload()
                node.golive.wait_certificates_live()
            except (Problem, NginxError) as err:
                failures.append(str(named(node, err)))
        if failures:
            raise Misconfigured("; ".join(failures))

    def defer(self, lineage: str) -> bool:
        """During certbot renew: every node (down ones too) waits for the
        run's end, where it gets the files, one reload and the check
        (batch.reload_once).  True for the run's first deferral."""
        expected = self.expected()
        first = False
        for node in self.nodes:
            first = batch.BATCH.add(node.run, lineage, expected) or first
            node.golive.expected = {}
        return first
