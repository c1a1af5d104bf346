"""The ssl_certificate lines of a server block: which names a certificate
covers, what replacing one would take away, the pairs a block has, setting
them, and the TLS listens that serve a certificate (how a renewal finds the
HTTPS port)."""
import os
import re
from typing import List, Optional, Sequence, Tuple

from certbot_nginx_webroot import edit, lookup, parser, sites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


def covers(certificate_names: Sequence[str], host: str) -> bool:
    """Whether a certificate for certificate_names is valid for host (a
    wildcard covers one label)."""
    host = host.lower()
    for name in certificate_names:
        name = name.lower()
        if name == host or (name.startswith("*.") and "." in host
                            and host.split(".", 1)[1] == name[2:]):
            return True
    return False


def covers_server_name(certificate_names: Sequence[str], server_name: str) -> bool:
    """Whether a certificate for certificate_names is valid for every host
    server_name matches: a regular expression or a trailing wildcard
    (``www.example.*``) matches hosts no certificate can list."""
    if server_name.startswith("~") or server_name.endswith(".*"):
        return False
    if server_name.startswith("."):  # ".example.org": the name and *.example.org
        return covers(certificate_names, server_name[1:]) and \
            covers(certificate_names, "*" + server_name)
    return covers(certificate_names, server_name)


def _probe_labels(server_names: Sequence[str]) -> List[str]:
    """Labels to try a wildcard certificate name's hosts with against
    server_names: the words of their patterns (``~^(www|api)\\.``: www,
    api) and a few common ones.  A regular expression's hosts cannot be
    listed; these find the usual ones (any label, or a list of them)."""
    labels = ["www", "a", "nginx-webroot-probe"]
    for name in server_names:
        for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9-]*", name):
            if word.lower() not in labels:
                labels.append(word.lower())
    return labels


def answered_certificate_names(server_names: Sequence[str], old: Sequence[str],
                               new: Sequence[str]) -> List[str]:
    """The names of the certificate old that a block with server_names
    answers (by nginx's matching: literal, wildcard or regular expression)
    and the certificate new does not cover: what replacing old with new
    would take away.  A wildcard name of old counts when one of the hosts
    it covers that new does not is answered by the block."""
    names = [n.lower() for n in server_names]
    found = []
    for name in old:
        name = name.lower()
        if "." not in name or covers(new, name):  # a placeholder's CN ("snakeoil")
            continue
        if name.startswith("*."):
            hosts = [f"{label}{name[1:]}" for label in _probe_labels(names)]
        else:
            hosts = [name]
        if any(lookup.server_rank(host, names) is not None and not covers(new, host)
               for host in hosts):
            found.append(name)
    return found


def certificate_pairs(config: Config, server: Node) -> List[Tuple[str, Optional[str]]]:
    """(ssl_certificate, ssl_certificate_key) of server, in order: nginx
    pairs the n-th of one with the n-th of the other, and serves each pair
    to the clients that support its key type (RSA, ECDSA)."""
    # nginx reads a relative path from its configuration directory, not from
    # certbot's working directory (`/` under cron).
    certs = [os.path.join(config.prefix, n.args[0]) for n in server.children
             if n.name == "ssl_certificate" and n.args]
    keys = [os.path.join(config.prefix, n.args[0]) for n in server.children
            if n.name == "ssl_certificate_key" and n.args]
    return [(cert, keys[i] if i < len(keys) else None) for i, cert in enumerate(certs)]


def set_certificate(config: Config, server: Node, fullchain: str, key: str,
                    https_port: int, pair: int = 0) -> None:
    """ssl_certificate and ssl_certificate_key in server: the pair-th pair
    replaced in place, or, past the last pair, a pair added after the
    others (after listen/server_name for the first); the listen on
    https_port gets ssl."""
    newline = config.file_of(server).newline
    ssl_on = config.ssl_on(server)
    for i, node in enumerate(server.children):
        listen = lookup.parse_listen(node.args) if node.name == "listen" else None
        if listen and listen.port == https_port and not listen.ssl and not ssl_on:
            edit.set_args(server, i, node.args + ["ssl"])
            config.mark_changed(server)
    for name, value in (("ssl_certificate", fullchain), ("ssl_certificate_key", key)):
        direct = [i for i, n in enumerate(server.children) if n.name == name]
        if pair < len(direct):
            if server.children[direct[pair]].args != [value]:
                edit.set_args(server, direct[pair], [value])
                config.mark_changed(server)
            continue
        inherited = config.directives(server, name)
        if inherited and not direct:
            raise sites.SiteError(
                f"{name} for the server block at {sites.where(server)} is set in an included file "
                f"({sites.where(inherited[0])}) that other blocks may share; move it into the "
                "server block", node=inherited[0])
        pairs = [i for i, n in enumerate(server.children)
                 if n.name in ("ssl_certificate", "ssl_certificate_key")]
        after = max(pairs or [i for i, n in enumerate(server.children)
                              if n.name in ("listen", "server_name")], default=-1)
        edit.insert(server, after + 1, f"{name} {parser.quote(value)};  {edit.MARK}",
                    newline, server.file)
        config.mark_changed(server)


def certificate_listens(config: Config, name: str, fullchain: str) -> List[Tuple[str, int]]:
    """(address, port) of every TLS listen of the blocks that serve name with
    the certificate fullchain, in config order.  This is how a renewal finds
    the HTTPS port: certbot does not store --https-port in the renewal
    configuration."""
    found: List[Tuple[str, int]] = []
    for server in config.servers():
        if lookup.server_rank(name.lower(), server.names) is None:
            continue
        if not _has_certificate(config, server.ref, fullchain):
            continue
        # `ssl on;` (before nginx 1.25) makes every listen of the block TLS.
        tls = [listen for listen in server.listens if lookup.takes_tls(listen, server)]
        for listen in tls:
            if (listen.addr, listen.port) not in found:
                found.append((listen.addr, listen.port))
    if found:
        return found
    # No block has the name: a default_server (or the first block of an
    # address) with the certificate may serve it (a few blocks to read, not
    # every block's body).
    ports = sorted({listen.port for server in config.servers() for listen in server.listens
                    if lookup.takes_tls(listen, server)})
    for port in ports:
        for match in _answering_quietly(config, name, port):
            if match.kind == lookup.DEFAULT and lookup.takes_tls(match.listen, match.server) and \
                    _has_certificate(config, match.server.ref, fullchain) and \
                    (match.listen.addr, port) not in found:
                found.append((match.listen.addr, port))
    return found


def _has_certificate(config: Config, server: Node, fullchain: str) -> bool:
    return any(node.args[:1] == [fullchain]
               for node in config.directives(server, "ssl_certificate"))


def _answering_quietly(config: Config, name: str, port: int) -> List[lookup.Match]:
    try:
        return lookup.answering(config.servers(), name, port)
    except lookup.AmbiguousName:
        return []
