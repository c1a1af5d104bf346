"""The TLS policy and the security headers of the HTTPS server blocks the
installer touches, as operations on the config model.

The policy lives in one snippet the plugin owns, ``options-ssl-nginx-webroot.conf``
(shipped in this package), which certbot's config directory holds beside
certbot's own ``options-ssl-nginx.conf``: that directory is certbot's state,
a renewal knows it without storing anything, and a packager's nginx tree
gains no file.  Every HTTPS block the installer creates or installs into
includes it, unless the block sets TLS settings of its own; a new version
of the policy is then one file to replace (see :data:`SHIPPED_HASHES`).

No certbot here: problems are :class:`sites.SiteError`.
"""
import os
from typing import List, Optional, Tuple

from certbot_nginx_webroot import edit, lookup, parser, sites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node

SNIPPET_NAME = "options-ssl-nginx-webroot.conf"
SHIPPED_SNIPPET = os.path.join(os.path.dirname(os.path.abspath(__file__)), SNIPPET_NAME)
# Where the plugin records the version it last installed or warned about, so
# an edited snippet is reported once per new version (certbot's scheme).
DIGEST_NAME = ".updated-options-ssl-nginx-webroot-conf-digest.txt"
# SHA-256 of every version of the snippet ever shipped, oldest first.  An
# installed snippet with one of these hashes is unedited and may be replaced
# by the current version; append the new hash whenever the snippet changes.
SHIPPED_HASHES = (
    "6e5d1e05926532e9547fba5e606e5dfa593b78439de0cda36bacf6005c6e9d98",
)

# certbot's `ensure-http-header` options, as nginx headers (certbot's nginx
# plugin sends the same values).
HEADERS = {
    "Strict-Transport-Security": ("Strict-Transport-Security", "max-age=31536000"),
    "Upgrade-Insecure-Requests": ("Content-Security-Policy", "upgrade-insecure-requests"),
}
NO_STAPLING = ("--staple-ocsp is refused: Let's Encrypt ended OCSP in 2025, so there is no "
               "OCSP response to staple; run without --staple-ocsp")

_policy_names: Optional[frozenset] = None


def policy_directives() -> frozenset:
    """The directives the shipped snippet sets."""
    global _policy_names
    if _policy_names is None:
        _policy_names = frozenset(node.name for node in
                                  parser.parse_file(SHIPPED_SNIPPET).children)
    return _policy_names


def is_snippet(path: str) -> bool:
    return os.path.basename(path) == SNIPPET_NAME


def own_policy(config: Config, server: Node) -> Tuple[bool, Optional[Node]]:
    """(does server include our snippet, the first TLS policy directive it
    sets itself, directly or through another include)."""
    included = any(n.name == "include" and n.args and is_snippet(n.args[0])
                   for n in server.children)  # even when someone emptied the file
    theirs = None
    for node in config.expand(server.children):
        if is_snippet(node.file):  # expand() put the snippet's lines in its include's place
            included = True
        elif theirs is None and node.name in policy_directives():
            theirs = node
    return included, theirs


def ensure_policy(config: Config, server: Node, snippet: str) -> Optional[str]:
    """Include snippet (an absolute path) in server, after its certificate
    lines.  Returns one line to tell the user when the block keeps a policy
    of its own instead (nginx refuses a directive set twice in one block)."""
    included, theirs = own_policy(config, server)
    if included:
        return None
    if theirs is not None:
        return (f"the server block at {sites.where(server)} sets its own TLS settings "
                f"({theirs.name} at {sites.where(theirs)}); kept them, without "
                f"{SNIPPET_NAME}")
    edit.insert(server, _after_head(server), f"include {parser.quote(snippet)};  {edit.MARK}",
                config.file_of(server).newline, server.file)
    config.mark_changed(server)
    return None


def _after_head(server: Node, also: Tuple[str, ...] = ()) -> int:
    """Where a new line goes in server: after its listens, names,
    certificates and our snippet's include (and the directives named in also)."""
    head = ("listen", "server_name", "http2", "ssl_certificate", "ssl_certificate_key") + also
    return 1 + max((i for i, n in enumerate(server.children) if n.name in head or (
        n.name == "include" and n.args and is_snippet(n.args[0]))), default=-1)


def https_servers(config: Config, name: str, https_port: int) -> List[Node]:
    """The server blocks that answer name (by server_name, not as a
    catch-all) on a TLS listen: on https_port or any port a block listens
    on with TLS (certbot does not store --https-port)."""
    ports = {https_port} | {listen.port for server in config.servers()
                            for listen in server.listens if lookup.takes_tls(listen, server)}
    found: List[Node] = []
    for port in sorted(ports):
        for match in sites.answering(config, name, port, use_default=False):
            server = match.server.ref
            tls = any(listen.port == port and lookup.takes_tls(listen, match.server)
                      for listen in match.server.listens)
            if tls and server not in found:
                found.append(server)
    return found


def _sends(config: Config, block: Node) -> List[Node]:
    """block's own add_header directives (includes expanded)."""
    return [n for n in config.expand(block.children) if n.name == "add_header"]


def _has(headers: List[Node], header: str) -> bool:
    return any(n.args and n.args[0].lower() == header.lower() for n in headers)


def _add_header(header: str, value: str) -> str:
    return f'add_header {header} "{value}" always;'


def ensure_header(config: Config, server: Node, option: str) -> Tuple[bool, List[str]]:
    """Make every response of server carry the header certbot's
    ``ensure-http-header`` option names, also error responses (``always``).

    nginx passes add_header down only to levels that set none of their own,
    so the header goes into the server block and into every location under
    it that sets add_header itself; where the server block set none, the
    http level's headers are copied along, as adding one there stops their
    inheritance.  Returns (whether anything was added, one line for each
    location that could not be edited because it lives in a shared file).
    """
    if option not in HEADERS:
        raise sites.SiteError(f"unsupported header {option!r}; this plugin sends "
                              + " and ".join(sorted(HEADERS)), node=server)
    header, value = HEADERS[option]
    newline = config.file_of(server).newline
    added = False
    own = _sends(config, server)
    if not _has(own, header):
        lines = []
        if not own:
            for http in config.http_blocks():
                lines += [f"add_header {' '.join(parser.quote(a) for a in n.args)};  "
                          f"{edit.MARK}" for n in _sends(config, http)]
        lines.append(_add_header(header, value) + "  " + edit.MARK)
        edit.insert(server, _after_head(server, ("add_header",)), "\n".join(lines), newline,
                    server.file)
        added = True
    skipped: List[str] = []
    added = _into_locations(config, server, header, value, skipped) or added
    if added:
        config.mark_changed(server)
    return added, skipped


def _into_locations(config: Config, block: Node, header: str, value: str,
                    skipped: List[str]) -> bool:
    added = False
    for node in list(config.expand(block.children)):
        if node.children is None or node.name not in ("location", "if"):
            continue
        if node.name == "if" and block.name == "server":
            continue  # add_header is not allowed in a server-level if
        own = _sends(config, node)
        if own and not _has(own, header):
            if not any(n is node for n in block.children):  # from an include
                skipped.append(f"the location at {sites.where(node)} sets add_header in a "
                               f"shared file, so its responses do not carry {header}; add "
                               f"add {_add_header(header, value)} there")
                continue
            edit.insert(node, 0, _add_header(header, value) + "  " + edit.MARK,
                        config.file_of(node).newline, node.file)
            config.mark_changed(node)
            added = True
        if any(n is node for n in block.children):
            added = _into_locations(config, node, header, value, skipped) or added
    return added
