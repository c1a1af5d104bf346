"""What the plugin does to server blocks, as operations on the config model:
the challenge location, server-level redirects that would hide it, our own
server block for names no block answers, HTTPS blocks and certificates, and
the redirect enhancement.

No certbot here: problems are :class:`SiteError` with a message that names
the file and line; the plugin passes it on.  Every function edits the tree
in memory and marks what it changed; nothing is written until Config.save.
"""
import fnmatch
import os
from typing import List, Optional, Sequence, Tuple

from acme import challenges

from certbot_nginx_webroot import edit, lookup, parser
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.nginxctl import HTTP2_DIRECTIVE, HTTP2_LISTEN
from certbot_nginx_webroot.parser import Node

CHALLENGE_PREFIX = "/" + challenges.HTTP01.URI_ROOT_PATH + "/"
OWN_FILE = "certbot-nginx-webroot.conf"
# Rewrite-module directives that run at server level, before nginx picks a location.
_SERVER_LEVEL_REWRITES = ("return", "rewrite", "if")


class SiteError(ValueError):
    """The configuration cannot be edited safely; says where and why."""


def where(node: Node) -> str:
    return f"{node.file}:{node.line}"


def answering(config: Config, name: str, port: int,
              use_default: bool = True) -> List[lookup.Match]:
    """The server blocks that answer name on port (see lookup.answering)."""
    try:
        return lookup.answering(config.servers(), name, port, use_default)
    except lookup.AmbiguousName as err:
        places = ", ".join(where(s.ref) for s in err.servers)
        raise SiteError(f"{err}: {places}; cannot tell which one to use (nginx uses the "
                        "first and warns \"conflicting server name\"); remove the duplicate"
                        ) from err


def challenge_location(root: str) -> str:
    """The location block nginx serves challenge files through: only the
    files in it, all as text/plain (the empty types map; default_type alone
    would still serve x.html as text/html), and nothing a symlink in the
    directory points to (nginx checks each part below the root)."""
    return (f"location ^~ {CHALLENGE_PREFIX} {{  {edit.MARK}\n"
            f"    root {parser.quote(root)};  {edit.MARK}\n"
            f"    types {{ }}  {edit.MARK}\n"
            f"    default_type text/plain;  {edit.MARK}\n"
            f"    disable_symlinks on from=$document_root;  {edit.MARK}\n"
            f"    try_files $uri =404;  {edit.MARK}\n"
            f"}}  {edit.MARK}")


def is_challenge_location(node: Node) -> bool:
    return node.name == "location" and bool(node.args) and \
        node.args[-1].rstrip("/") == CHALLENGE_PREFIX.rstrip("/")


def served_challenge_dir(config: Config, server: Node) -> Optional[Tuple[Node, Optional[str]]]:
    """(location, directory) when server already has a prefix location that
    answers the challenge path (directory None when no root is set); else
    None."""
    best = None
    for node in config.expand(server.children):
        if node.name != "location" or node.children is None or not node.args:
            continue
        if len(node.args) == 2 and node.args[0] not in ("^~", "="):
            continue  # a regex location
        prefix = node.args[-1]
        if prefix == "/" or not CHALLENGE_PREFIX.startswith(prefix):
            continue
        if best is None or len(prefix) > len(best.args[-1]):
            best = node
    if best is None:
        return None
    rest = CHALLENGE_PREFIX[len(best.args[-1]):]
    for name in ("alias", "root"):
        found = config.directives(best, name)
        if found and found[0].args:
            base = found[0].args[0]
            served = os.path.join(base, rest) if name == "alias" else \
                os.path.join(base, CHALLENGE_PREFIX.lstrip("/"))
            return best, served
    roots = config.directives(server, "root")
    if roots and roots[0].args:
        return best, os.path.join(roots[0].args[0], CHALLENGE_PREFIX.lstrip("/"))
    return best, None  # nginx's compiled-in html root: not a directory we can name


def ensure_challenge_location(config: Config, server: Node, root: str) -> None:
    """Give server the challenge location serving root, unless a location
    that serves the same directory is there already."""
    existing = served_challenge_dir(config, server)
    wanted = os.path.join(root, challenges.HTTP01.URI_ROOT_PATH)
    if existing is not None:
        node, served = existing
        if served is None:
            raise SiteError(
                f"the location at {where(node)} answers the challenge path for the server "
                f"block at {where(server)} but sets no root; give it \"root {root};\" or "
                "remove it")
        if os.path.normpath(served) != os.path.normpath(wanted):
            served = os.path.normpath(served)
            suffix = "/" + challenges.HTTP01.URI_ROOT_PATH
            webroot = (served[:-len(suffix)] or "/") if served.endswith(suffix) else served
            raise SiteError(
                f"the server block at {where(server)} already serves challenges from "
                f"{served} (location at {where(node)}); rerun with "
                f"--nginx-webroot-path {webroot}")
        return
    children = server.children
    index = next((i for i, n in enumerate(children) if n.name == "location"), len(children))
    edit.insert(server, index, challenge_location(root), config.file_of(server).newline,
                server.file)
    config.mark_changed(server)


def swallows(node: Node) -> bool:
    """Would this server-level directive answer a challenge request before
    any location is chosen?"""
    if node.name == "return":
        return True
    if node.name == "rewrite":
        return len(node.args) > 1 and (node.args[1].startswith(("http://", "https://"))
                                       or node.args[-1] in ("redirect", "permanent"))
    if node.name == "if" and node.children is not None:
        if any("acme-challenge" in a for a in node.args):
            return False  # written to let challenges through
        return any(swallows(child) for child in node.children)
    return False


def unswallow(config: Config, server: Node) -> None:
    """Move server-level redirects into ``location /``: at server level they
    answer before nginx picks a location, so the challenge would never be
    served.  For every other request nothing changes, which holds only when
    the block has no other locations; otherwise refuse."""
    swallowing = [n for n in server.children if swallows(n)]
    if not swallowing:
        return
    if any(n.name == "location" and not is_challenge_location(n) for n in server.children):
        raise SiteError(
            f"the server block at {where(server)} answers every request at server level "
            f"({swallowing[0].name} at line {swallowing[0].line}) and also has locations; "
            "move the server-level directive into \"location /\" so challenges can be served")
    moved = [i for i, n in enumerate(server.children) if n.name in _SERVER_LEVEL_REWRITES]
    # Each moves with its trailing comment (e.g. "# managed by Certbot").
    body = "\n".join(" ".join(filter(None, (parser.dump_node(server.children[i]),
                                            edit.take_trailing(server, i)))) for i in moved)
    block = f"location / {{  {edit.MARK}\n" + edit.nest(body, 1) + f"\n}}  {edit.MARK}"
    for i in reversed(moved[1:]):
        edit.remove(server, i)
    edit.replace(server, moved[0], block, config.file_of(server).newline, server.file)
    config.mark_changed(server)


def own_file(config: Config) -> Tuple[str, Optional[Node]]:
    """Where our own server blocks go: (path, http block to add an include
    to, or None when an existing http-level include glob covers the path)."""
    https = list(config.http_blocks())
    if not https:
        raise SiteError(f"no http block in {config.main_path}")
    for http in https:
        for node in http.children:
            if node.name == "include" and node.args and "*" in node.args[0]:
                pattern = config.include_pattern(node)
                candidate = os.path.join(os.path.dirname(pattern), OWN_FILE)
                if os.path.isdir(os.path.dirname(pattern)) and \
                        fnmatch.fnmatch(candidate, pattern):
                    return candidate, None
    path = os.path.join(config.prefix, OWN_FILE)
    return path, (None if path in config.files else https[0])


def add_own_server(config: Config, names: Sequence[str], root: str, port: int) -> str:
    """A minimal server block answering names on port with the challenge
    location (and 404 for anything else), in our own file; returns its path."""
    ipv6 = any(listen.ipv6 for s in config.servers() for listen in s.listens)
    lines = [f"server {{  {edit.MARK}", f"    listen {port};  {edit.MARK}"]
    if ipv6:
        lines.append(f"    listen [::]:{port};  {edit.MARK}")
    lines.append(f"    server_name {' '.join(names)};  {edit.MARK}")
    lines.extend("    " + line for line in challenge_location(root).split("\n"))
    lines += [f"    location / {{ return 404; }}  {edit.MARK}", f"}}  {edit.MARK}"]
    path, http = own_file(config)
    text = "\n".join(lines) + "\n"
    if path in config.files:  # the file is all ours: append
        text = parser.dump(config.files[path]).rstrip("\n") + "\n\n" + text
    elif http is not None:  # no include covers our file yet: add one
        edit.insert(http, len(http.children), f"include {path};  {edit.MARK}",
                    config.file_of(http).newline, http.file)
        config.mark_changed(http)
    config.add_file(path, parser.parse(text, path))
    return path


def redirects_to_https(server: Node) -> bool:
    """Is this block's answer to / (at server level or in location /) a
    redirect to https?"""
    nodes = list(server.children)
    for node in server.children:
        if node.name == "location" and node.args == ["/"] and node.children is not None:
            nodes.extend(node.children)
    for node in nodes:
        if node.name == "return" and len(node.args) == 2 and node.args[0] in (
                "301", "302", "307", "308") and node.args[1].startswith("https://"):
            return True
        if node.name == "if" and node.children is not None and redirects_to_https(node):
            return True
    return False


def http2_listen_stays_local(config: Config, addr: str, port: int) -> bool:
    """Whether ``listen addr:port ... http2`` turns HTTP/2 on for no block
    but the new one.  Before nginx 1.25.1 the flag belongs to the listening
    socket, so it is on for every block on that address:port once one block
    sets it; it is safe when no other block listens there, or when one
    already set it."""
    others = [listen for server in config.servers() for listen in server.listens
              if (listen.addr, listen.port) == (addr, port)]
    return not others or any(listen.http2 for listen in others)


def make_https_server(config: Config, source: lookup.Match, name: str,
                      http_port: int, https_port: int, http2: Optional[str] = None) -> Node:
    """Copy the block that answers name on http_port into a new block right
    after it that listens on https_port with ssl, on the same addresses.

    Socket options and default_server are not copied (nginx allows them once
    per address:port); a catch-all source gets server_name name in the copy.
    http2 is how the running nginx turns HTTP/2 on (nginxctl.HTTP2_LISTEN or
    HTTP2_DIRECTIVE), None for no HTTP/2.
    """
    node = source.server.ref
    if redirects_to_https(node):
        raise SiteError(
            f"{name} has no server block on port {https_port}, and the one on port "
            f"{http_port} ({where(node)}) only redirects to HTTPS; add an HTTPS server "
            "block for it")
    addrs: List[str] = []
    for listen in source.server.listens:
        if listen.port == http_port and listen.addr not in addrs:
            addrs.append(listen.addr)
    lines = []
    for addr in addrs or ["*"]:
        flags = "ssl"
        if http2 == HTTP2_LISTEN and http2_listen_stays_local(config, addr, https_port):
            flags += " http2"
        lines.append(f"listen {https_port if addr == '*' else f'{addr}:{https_port}'} "
                     f"{flags};  {edit.MARK}")
    if http2 == HTTP2_DIRECTIVE and not config.directives(node, "http2"):
        lines.append(f"http2 on;  {edit.MARK}")
    new_listens = "\n".join(lines)
    newline = config.file_of(node).newline
    holder = config.holder(node)
    index = next(i for i, n in enumerate(holder.children) if n is node)
    copy = edit.copy_after(holder, index, newline)
    listens = [i for i, n in enumerate(copy.children) if n.name == "listen"]
    for i in reversed(listens[1:]):
        edit.remove(copy, i)
    if listens:
        edit.replace(copy, listens[0], new_listens, newline, copy.file)
    else:
        edit.insert(copy, 0, new_listens, newline, copy.file)
    if source.kind == lookup.DEFAULT:
        names = [i for i, n in enumerate(copy.children) if n.name == "server_name"]
        for i in reversed(names[1:]):
            edit.remove(copy, i)
        if names:
            edit.set_args(copy, names[0], [name])
        else:
            edit.insert(copy, 0, f"server_name {name};  {edit.MARK}", newline, copy.file)
    edit.mark_block(holder, index + 1)  # every line of the copy is one the plugin added
    config.mark_changed(copy)
    return copy


def set_certificate(config: Config, server: Node, fullchain: str, key: str,
                    https_port: int) -> None:
    """ssl_certificate and ssl_certificate_key in server, replaced in place
    or added after listen/server_name; the listen on https_port gets ssl."""
    newline = config.file_of(server).newline
    for i, node in enumerate(server.children):
        listen = lookup.parse_listen(node.args) if node.name == "listen" else None
        if listen and listen.port == https_port and not listen.ssl:
            edit.set_args(server, i, node.args + ["ssl"])
            config.mark_changed(server)
    for name, value in (("ssl_certificate", fullchain), ("ssl_certificate_key", key)):
        direct = [i for i, n in enumerate(server.children) if n.name == name]
        if direct:
            if server.children[direct[0]].args != [value]:
                edit.set_args(server, direct[0], [value])
                config.mark_changed(server)
            continue
        inherited = config.directives(server, name)
        if inherited:
            raise SiteError(
                f"{name} for the server block at {where(server)} is set in an included file "
                f"({where(inherited[0])}) that other blocks may share; move it into the "
                "server block")
        after = max((i for i, n in enumerate(server.children)
                     if n.name in ("listen", "server_name", "ssl_certificate")), default=-1)
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
        certificates = config.directives(server.ref, "ssl_certificate")
        if not any(node.args[:1] == [fullchain] for node in certificates):
            continue
        # `ssl on;` (before nginx 1.25) makes every listen of the block TLS.
        ssl_on = any(node.args == ["on"] for node in config.directives(server.ref, "ssl"))
        tls = [listen for listen in server.listens if listen.ssl or ssl_on]
        for listen in tls:
            if (listen.addr, listen.port) not in found:
                found.append((listen.addr, listen.port))
    return found


def add_redirect(config: Config, match: lookup.Match, https_port: int) -> bool:
    """Redirect every request but challenges to HTTPS; False when the block
    redirects to HTTPS already."""
    server = match.server.ref
    if any(listen.port == https_port for listen in match.server.listens):
        raise SiteError(f"the server block at {where(server)} serves both HTTP and HTTPS; "
                        "split it to add a redirect")
    if redirects_to_https(server):
        return False
    target = "https://$host" + ("" if https_port == 443 else f":{https_port}")
    after = max((i for i, n in enumerate(server.children)
                 if n.name in ("listen", "server_name")), default=-1)
    edit.insert(server, after + 1,
                f'if ($request_uri !~ "^{CHALLENGE_PREFIX}") {{  {edit.MARK}\n'
                f"    return 301 {target}$request_uri;  {edit.MARK}\n"
                f"}}  {edit.MARK}", config.file_of(server).newline, server.file)
    config.mark_changed(server)
    return True


def plain_names(config: Config) -> set:
    """Every server_name that is a plain host name (no wildcard or regex)."""
    names = set()
    for server in config.servers():
        for name in server.names:
            if name and not name.startswith(("~", "*", ".")) and not name.endswith("*") \
                    and "." in name and "$" not in name:
                names.add(name.lower())
    return names
