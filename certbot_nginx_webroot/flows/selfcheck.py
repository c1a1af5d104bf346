"""The self-check: ask nginx for the challenge files as the CA will, before
the CA is asked, and say why when it does not serve them.

A plain request first: it needs no configuration, so a renewal reads none.
Where that is not answered and the configuration has that address listen
with proxy_protocol (nginx behind HAProxy or a balancer, which drops a
connection that does not start with a PROXY header), again with the header.
"""
import logging
from typing import Any, Dict, List, Tuple

from certbot_nginx_webroot import challenge_location, lookup, probes, sites
from certbot_nginx_webroot.flows.golive import proxied
from certbot_nginx_webroot.problems import Problem

logger = logging.getLogger(__name__)

Targets = Dict[str, List[Tuple[str, int]]]  # host -> (listen address, port) to ask


def achall_name(achall: Any) -> str:
    """The identifier: a host name, or an IP address (certbot 5's --ip-address)."""
    identifier = getattr(achall, "identifier", None)
    return identifier.value if identifier is not None else achall.domain


def achall_host(achall: Any) -> str:
    """The Host header the CA sends for the identifier (an IPv6 address in
    brackets), which is also what nginx matches server_name against."""
    return lookup.request_host(achall_name(achall))


class SelfCheck:
    """Whether this run's nginx serves the challenge files of a store."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._proxied_targets: set = set()  # (host, port) a PROXY header was sent to

    def targets(self, host: str, from_config: bool = False) -> List[Tuple[str, int]]:
        """Where the self-check asks for host's challenges.  An IP address is
        asked at that address, as the CA does (through loopback when it is
        not this machine's, e.g. behind NAT, where nginx sees a local address
        and its wildcard listen answers).  A name is asked on loopback, or
        where the config listens for it (from_config)."""
        port = self.run.options.http_port
        ip = lookup.ip_address(host)
        if ip is not None:
            local = self.run.net.is_local_address(str(ip))
            return [(lookup.listen_addr(ip) if local else
                     "[::]" if ip.version == 6 else "*", port)]
        if not from_config:
            return [("*", port)]
        targets = {(m.listen.addr, port) for m in self.run.answering(host, port)}
        return sorted(targets) or [("*", port)]

    def served(self, store: Any, achall: Any, addr: str, port: int) -> Tuple[bool, str]:
        """Whether nginx serves achall's file from store on addr:port, and if
        not, what it answered."""
        expected = store.read(achall.chall.encode("token"))
        # Once known, the header goes first (nginx logs each plain request
        # it drops as a "broken header").
        where = (probes.connect_host(addr), port)  # ("*" and "127.0.0.1" are one place)
        proxy = where in self._proxied_targets
        reached_addr, reached_port = self.run.controller.reach(addr, port)
        while True:
            try:
                status, body = self.run.net.fetch(achall_host(achall), reached_addr,
                                                  reached_port, achall.chall.path,
                                                  proxy_protocol=proxy)
                break
            except probes.PROBE_ERRORS as err:  # e.g. something that is not HTTP answers
                if proxy or not self.run.wants_proxy_protocol(addr, port):
                    return False, f"{err.__class__.__name__}: {err}" + proxied(proxy)
                proxy = True
                self._proxied_targets.add(where)
        if status == 200 and body.strip() == expected:
            return True, "ok"
        return False, (f"HTTP {status}" + ("" if status != 200 else ", wrong content")
                       + proxied(proxy))

    def all_served(self, store: Any, achalls: list, targets: Targets) -> bool:
        return all(self.served(store, a, addr, port)[0]
                   for a in achalls for addr, port in targets[achall_host(a)])

    def not_served(self, store: Any, achalls: list, targets: Targets) -> List[str]:
        problems = []
        for achall in achalls:
            name = achall_host(achall)
            for addr, port in targets[name]:
                ok, detail = self.served(store, achall, addr, port)
                if not ok:  # where the probe went (a node: its own address)
                    asked, asked_port = self.run.controller.reach(addr, port)
                    problems.append(f"http://{name}{achall.chall.path} via "
                                    f"{probes.connect_host(asked)}:{asked_port}: {detail}")
        return problems

    def report(self, problems: List[str], targets: Targets, written: List[str]) -> str:
        """The refusal when nginx does not serve the files: what each probe
        got, the server-level ifs that may answer instead, where the files are."""
        hints = []
        config = self.run.config()
        for name in sorted(targets):
            for match in self.run.answering(name, self.run.options.http_port):
                hints += [f"the server-level if at {sites.where(node)} may answer "
                          f"{name}'s challenges" for node in
                          challenge_location.server_level_ifs(config, match.server.ref)]
        return ("nginx does not serve the challenge files, so the CA was not asked to "
                "validate: " + "; ".join(problems + sorted(set(hints))) +
                f"; the files were written to {', '.join(written)}")

    def ca_must_pass(self, names: List[str]) -> None:
        """The self-check asks from this machine; the CA asks from public
        addresses.  Where nginx's access checks let the one in and keep the
        other out (``allow 127.0.0.1; deny all;``), stop before the CA is
        asked.  A configuration the plugin cannot read is not judged: nginx
        serves the files, and this check only spares a failed validation."""
        try:
            config = self.run.config()
            problems = [challenge_location.ca_kept_out(config, match.server.ref, name)
                        for name in names
                        for match in sites.answering(config, name,
                                                     self.run.options.http_port)]
        except Problem as err:
            logger.warning("Not checking that nginx lets the CA in: %s", err)
            return
        problems = [problem for problem in problems if problem]
        if problems:
            raise Problem("; ".join(sorted(set(problems))) + "; the CA was not asked to validate")
