"""Go live: reload nginx, then wait until it serves the new certificates.

After a reload only the new workers take connections, so a TLS handshake
with SNI per name settles whether the certificate on disk is the one
served; nothing sleeps a fixed time.  Where the handshake on loopback does
not show it, the addresses the configuration listens on for that name
are asked (with a PROXY protocol header where the listen wants one).
"""
import logging
import ssl
from typing import Any, Dict, List, Optional, Tuple

from certbot_nginx_webroot import certificate_lines, certificates, probes
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.problems import Misconfigured, Problem

logger = logging.getLogger(__name__)

LIVE_TIMEOUT = 30.0

Expected = Dict[str, List[str]]  # fullchain -> the names it must be served for


class GoLive:
    """What this run's nginx must serve once reloaded, and the reload."""

    def __init__(self, run: Any) -> None:
        self.run = run
        # fullchain -> the names it must be served for (a name may have two:
        # an RSA and an ECDSA lineage)
        self.expected: Expected = {}
        self.live = False  # nginx runs what is on disk; nothing changed since

    def expect(self, fullchain: str, names: List[str]) -> None:
        self.expected.setdefault(fullchain, []).extend(names)
        self.live = False

    def changed(self) -> None:
        """Something was written that nginx does not run yet."""
        self.live = False

    def forget(self) -> None:
        """The edits were undone: nothing of theirs is to be waited for."""
        self.expected.clear()
        self.live = False

    def reload(self) -> None:
        try:
            self.run.controller.reload(LIVE_TIMEOUT)
        except NginxError as err:
            raise Misconfigured(str(err)) from err
        self.live = True

    def wait_certificates_live(self) -> None:
        port = self.run.options.https_port
        for fullchain, names in sorted(self.expected.items()):
            try:
                expected = self.run.net.first_certificate_der(fullchain)
            except OSError as err:
                raise Problem(f"cannot read {fullchain}: {err}") from err
            key_type = certificates.key_type(fullchain)
            for name in sorted(set(names)):
                self._wait_served(name, fullchain, port, key_type, expected)
        self.expected.clear()

    def _wait_served(self, name: str, fullchain: str, port: int, key_type: Optional[str],
                     expected: Optional[bytes]) -> None:
        if self.served_on_loopback(name, port, key_type, expected):
            return
        # (address, port, whether nginx wants a PROXY protocol header there)
        targets = [(addr, target_port, self.run.wants_proxy_protocol(addr, target_port))
                   for addr, target_port in self.tls_targets(name, fullchain)]

        def serves_it() -> bool:
            return all(self.serves(name, addr, target_port, key_type, expected,
                                   proxy_protocol=proxy)
                       for addr, target_port, proxy in targets)
        if not probes.wait_until(serves_it, LIVE_TIMEOUT):
            where = ", ".join(f"{probes.connect_host(a)}:{p}{proxied(proxy)}"
                              for a, p, proxy in targets)
            raise Problem(
                f"nginx reloaded but does not serve {fullchain} for {name} on {where} "
                f"after {LIVE_TIMEOUT:.0f} s; check its error log")

    def lineage_served(self, fullchain: str, names: List[str]) -> bool:
        """Whether nginx serves fullchain's certificate for every name now
        (no waiting)."""
        try:
            expected = self.run.net.first_certificate_der(fullchain)
        except OSError:
            return False
        key_type = certificates.key_type(fullchain)
        port = self.run.options.https_port
        for name in sorted(set(names)):
            if self.served_on_loopback(name, port, key_type, expected):
                continue
            try:
                if not all(self.serves(name, addr, target_port, key_type, expected)
                           for addr, target_port in self.tls_targets(name, fullchain)):
                    return False
            except probes.PROBE_ERRORS:
                return False
        return True

    def served_on_loopback(self, name: str, port: int, key_type: Optional[str],
                           expected: Optional[bytes]) -> bool:
        """Whether nginx serves name expected on loopback.  After the reload
        only the new workers take connections, so a handshake settles the
        common case without parsing the config."""
        try:
            return self.serves(name, "*", port, key_type, expected, timeout=2)
        except probes.PROBE_ERRORS:
            return False
        except Problem:  # not reachable from here (a container publishes no such port)
            return False

    def tls_targets(self, name: str, fullchain: str) -> List[Tuple[str, int]]:
        """Where to wait for name to be served fullchain, per the config: the
        TLS listens of the blocks that use this certificate (a renewal does
        not know --https-port, as certbot does not store it), else the blocks
        answering on --https-port."""
        port = self.run.options.https_port
        targets = certificate_lines.certificate_listens(self.run.config(), name,
                                            self.run.controller.nginx_path(fullchain))
        if not targets:
            matches = self.run.answering(name, port, use_default=False)
            targets = sorted({(m.listen.addr, port) for m in matches})
        return targets or [("*", port)]

    def serves(self, name: str, addr: str, port: int, key_type: Optional[str],
               expected: Optional[bytes], timeout: float = 5.0,
               proxy_protocol: bool = False) -> bool:
        """Whether nginx serves the certificate expected (of key_type) for
        name on addr:port (reached through the controller).  A block may
        hold an RSA and an ECDSA certificate and picks per client: a default
        handshake gets the ECDSA one; a TLS 1.2 handshake offering only
        ciphers of the expected key type gets that one.  With
        proxy_protocol, each handshake starts with a PROXY protocol header."""
        addr, port = self.run.controller.reach(addr, port)
        net = self.run.net
        first = net.served_certificate(name, addr, port, timeout, proxy_protocol=proxy_protocol)
        if first == expected:
            return True
        if key_type is None:
            return False
        try:
            return net.served_certificate(name, addr, port, timeout, key_type=key_type,
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


def proxied(proxy: bool) -> str:
    """What a probe's report adds when it sent a PROXY protocol header."""
    return " (sent with a PROXY protocol header: that listen has proxy_protocol)" if proxy else ""
