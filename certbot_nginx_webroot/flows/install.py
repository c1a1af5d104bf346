"""Install: put a certificate in the server blocks that serve its names.

Where a TLS block answers the name, its certificate pair is replaced (or,
for the other key type, one is added beside it); else a TLS block is made
or chosen (new_tls_targets).  Never a certificate that covers fewer of the
names a block answers than the one it replaces.  Each HTTPS block gets
the TLS policy snippet unless it keeps its own settings.  The edits stay in
memory until certbot saves them (transaction.py); restart goes live.
"""
import logging
import os
from typing import Any, Callable, List, Optional, Tuple

from certbot_nginx_webroot import (
    certificate_lines, certificates, challenge_location, https_server, lookup, placement, sites,
    tls)
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.problems import Problem

logger = logging.getLogger(__name__)


class Installation:
    """This run's certificate installs into one nginx's configuration."""

    def __init__(self, run: Any, golive: Any, tls_snippet: Callable[[bool], str]) -> None:
        self.run = run
        self.golive = golive
        # (create) -> the path of the TLS policy snippet, installed (create)
        # or brought up to date (certbot's version-controlled file).
        self.tls_snippet = tls_snippet
        self._kept_policy: set = set()  # blocks already said to keep their own TLS settings

    def deploy_cert(self, domain: str, cert_path: str, key_path: str,
                    fullchain_path: Optional[str] = None) -> None:
        """Files are read here under this machine's paths; the configuration
        names them as nginx sees them (controller.nginx_path)."""
        local_fullchain = fullchain_path or cert_path
        fullchain = self.run.controller.nginx_path(local_fullchain)
        key_in_nginx = self.run.controller.nginx_path(key_path)
        with self.run.editing() as config:
            covered = certificates.names(cert_path) or [domain]
            key_type = certificates.key_type(key_path) or certificates.key_type(cert_path)
            self._limit_challenge_methods(config, domain)
            targets = placement.tls_blocks(config, domain, self.run.options.https_port) or \
                self._new_tls_targets(config, domain, covered)
            placed = []
            for server, port in targets:
                try:
                    self._install_pair(config, server, port, fullchain, key_in_nginx,
                                       key_type, domain, covered)
                except sites.SiteError:
                    # The block has domain through a wildcard or regex, and
                    # names the old certificate still serves: domain's own
                    # :80 block, made to serve HTTPS, takes it instead (an
                    # exact name wins over those on the HTTPS port too).
                    server = self._own_https_block(config, domain, server, port, covered)
                    if server is None:
                        raise
                    self._install_pair(config, server, port, fullchain, key_in_nginx,
                                       key_type, domain, covered)
                placed.append(server)
            self._secure(config, placed)
        self.golive.expect(local_fullchain, [domain])

    def _limit_challenge_methods(self, config: Config, domain: str) -> None:
        """A challenge location of an older version answers every method:
        installing edits and reloads anyway, a renewal never does."""
        http_port, https_port = self.run.options.http_port, self.run.options.https_port
        for match in (sites.answering(config, domain, http_port)
                      + sites.answering(config, domain, https_port, use_default=False)):
            challenge_location.limit_challenge_methods(config, match.server.ref)

    def _install_pair(self, config: Config, server: Any, port: int, fullchain: str,
                      key_path: str, key_type: Optional[str], domain: str,
                      covered: List[str]) -> None:
        local_path = self.run.controller.local_path
        pairs = certificate_lines.certificate_pairs(config, server)
        pair = pair_to_replace(pairs, fullchain, key_type, domain, local_path)
        # nginx picks between pairs by what the client supports, not by
        # name: a pair added beside the others is served for every name of
        # the block too, so each must keep working.
        for current, _ in (pairs[pair:pair + 1] if pair < len(pairs) else pairs):
            keep_other_names_working(config, server, current, fullchain, covered, local_path)
        certificate_lines.set_certificate(config, server, fullchain, key_path, port, pair)

    def _own_https_block(self, config: Config, domain: str, server: Any, port: int,
                         covered: List[str]) -> Optional[Any]:
        """An HTTPS block for domain alone, made from the :80 block that has
        domain as an exact server_name, when the TLS block that serves it
        on --https-port has it only through a wildcard or regex (so the
        new block takes it there); None when there is no such :80 block."""
        http_port, https_port = self.run.options.http_port, self.run.options.https_port
        names = next((s.names for s in config.servers() if s.ref is server), ())
        rank = lookup.server_rank(domain.lower(), names)
        if port != https_port or rank is None or rank[0] == lookup.EXACT:
            return None
        source = next((m for m in sites.answering(config, domain, http_port)
                       if m.kind == lookup.EXACT and m.server.ref is not server), None)
        if source is None:
            return None
        try:
            return https_server.make_https_server(config, source, domain, http_port, https_port,
                                           self._http2_form(), covered)
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
        http_port, https_port = self.run.options.http_port, self.run.options.https_port
        http = sites.answering(config, domain, http_port)
        # The block named for the domain is the site; a catch-all that
        # answers it only on another address is not.
        source = next((m for m in http if m.kind != lookup.DEFAULT),
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
        if site and (source is None or source.kind == lookup.DEFAULT):
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

    def _http2_form(self) -> Optional[str]:
        """How the installed nginx turns HTTP/2 on, from ``nginx -V``."""
        try:
            return self.run.controller.build_info().http2_form
        except NginxError as err:
            raise Problem(str(err)) from err

    def _secure(self, config: Config, servers: List[Any]) -> None:
        """The TLS policy snippet in each of the HTTPS blocks, unless one
        keeps its own settings (said in one line)."""
        # included as nginx sees it (in a container, through a volume)
        snippet = self.run.controller.nginx_path(self.tls_snippet(True))
        for server in servers:
            kept = tls.ensure_policy(config, server, snippet)
            if kept and kept not in self._kept_policy:  # once, not once per name
                self._kept_policy.add(kept)
                logger.warning("%s", kept)


def pair_to_replace(pairs: List[Tuple[str, Optional[str]]], fullchain: str,
                    key_type: Optional[str], domain: str,
                    local_path: Callable[[str], str] = str) -> int:
    """Which of a block's certificate pairs a new certificate replaces;
    len(pairs) to add it beside them.  nginx serves an RSA and an ECDSA
    pair side by side (two lineages, --key-type rsa and ecdsa): the new
    one replaces its own lineage's pair, else the pair of its key type,
    else a placeholder (a certificate not for domain, e.g. a snakeoil);
    a certificate of the other type for domain is kept.  Paths are as the
    configuration names them; local_path gives the file to read."""
    if key_type is None:  # cannot tell: one certificate per block, as before
        return 0
    lineage = os.path.dirname(fullchain)
    kinds = [certificates.key_type(local_path(cert)) for cert, _ in pairs]
    for test in (lambda i: os.path.dirname(pairs[i][0]) == lineage,
                 lambda i: kinds[i] == key_type,
                 lambda i: kinds[i] is None or not certificate_lines.covers(
                     certificates.names(local_path(pairs[i][0])), domain)):
        found = next((i for i in range(len(pairs)) if test(i)), None)
        if found is not None:
            return found
    return len(pairs)


def keep_other_names_working(config: Config, server: Any, current: str,
                             fullchain: str, covered: List[str],
                             local_path: Callable[[str], str] = str) -> None:
    """Refuse to replace a block's certificate current when names the
    block answers are covered by it and not by the new one (another
    lineage, e.g. `-d a` then `-d b` on one block)."""
    if current == fullchain:
        return
    old = certificates.names(local_path(current))
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
