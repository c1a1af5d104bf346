"""Which TLS server blocks get a name's certificate: those that answer it
by name with TLS on any port, the HTTPS side of the same site, the
default block that serves it without naming it; and a server_name of its
own where the name joins a block."""
from typing import List, Optional, Sequence, Tuple

from certbot_nginx_webroot import edit, lookup, sites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


def _serves_tls(config: Config, match: lookup.Match) -> bool:
    server = match.server.ref
    if lookup.takes_tls(match.listen, match.server):
        return not any(n.args == ["on"] for n in config.directives(server,
                                                                   "ssl_reject_handshake"))
    return False


def _literal(name: str) -> bool:
    return not name.startswith(("~", "*", ".")) and not name.endswith(".*")


def tls_blocks(config: Config, name: str, https_port: int) -> List[Tuple[Node, int]]:
    """(block, port) for every block that answers name by name with TLS, on
    any port, plus those answering it on https_port: each gets the
    certificate."""
    found: List[Tuple[Node, int]] = []
    ports = {https_port}
    for server in config.servers():
        ports.update(listen.port for listen in server.listens
                     if lookup.takes_tls(listen, server))
    for port in sorted(ports):
        for match in sites.answering(config, name, port, use_default=False):
            if (port == https_port or lookup.takes_tls(match.listen, match.server)) and \
                    all(match.server.ref is not block for block, _ in found):
                found.append((match.server.ref, port))
    return found


def default_tls_blocks(config: Config, name: str, https_port: int) -> List[Node]:
    """The TLS blocks nginx serves name from on https_port although none
    has it as a server_name: the default_server of an address, else the
    first block on it (a block that rejects handshakes serves nothing)."""
    return [m.server.ref for m in sites.answering(config, name, https_port)
            if m.kind == lookup.DEFAULT and _serves_tls(config, m)]


def answers_another(config: Config, server: Node, name: str,
                    certificate_names: Sequence[str]) -> bool:
    """Does server answer, by server_name, one of certificate_names other
    than name (so it is that certificate's site)?"""
    names = next((s.names for s in config.servers() if s.ref is server), ())
    return any(lookup.server_rank(other.lower(), names) is not None
               for other in certificate_names if other.lower() != name and _literal(other))


def tls_block_of_the_site(config: Config, source: lookup.Match, name: str,
                          certificate_names: Sequence[str], https_port: int) -> Optional[Node]:
    """The TLS block on https_port that already serves another name of the
    certificate which source (the block answering name on the HTTP port)
    answers by name too: the HTTPS side of the same site, made for a
    certificate before it was expanded to name.  None when there is none."""
    if source.kind == lookup.DEFAULT:
        return None
    for other in certificate_names:
        other = other.lower()
        if other == name or not _literal(other) or \
                lookup.server_rank(other, source.server.names) is None:
            continue
        for match in sites.answering(config, other, https_port, use_default=False):
            if match.server.ref is not source.server.ref and _serves_tls(config, match):
                return match.server.ref
    return None


def add_server_name(config: Config, server: Node, name: str) -> None:
    """A server_name line of its own for name in server, after its listens
    and names (nginx adds up every server_name of a block); the user's lines
    stay as they are."""
    after = max((i for i, n in enumerate(server.children)
                 if n.name in ("listen", "server_name")), default=-1)
    edit.insert(server, after + 1, f"server_name {name};  {edit.MARK}",
                config.file_of(server).newline, server.file)
    config.mark_changed(server)
