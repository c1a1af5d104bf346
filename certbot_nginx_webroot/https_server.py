"""The block that serves a name over HTTPS when none does yet: the block
that answers it on the HTTP port, given a TLS listen, where that changes
nothing else; else a copy of it right after it."""
import re
from typing import List, Optional, Sequence

from certbot_nginx_webroot import (certificate_lines, edit, effective, lookup, redirects,
                                   rewrites, sites)
from certbot_nginx_webroot.build_info import HTTP2_DIRECTIVE, HTTP2_LISTEN
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


def _host_names(names: Sequence[str]) -> List[str]:
    """The server_names that can match a request's host ("_" and "" are
    the catch-all idiom: names no client sends)."""
    return [n for n in names if n not in ("", "_")]


def http2_listen_stays_local(config: Config, addr: str, port: int) -> bool:
    """Whether ``listen addr:port ... http2`` turns HTTP/2 on for no block
    but the new one.  Before nginx 1.25.1 the flag belongs to the listening
    socket, so it is on for every block on that address:port once one block
    sets it; it is safe when no other block listens there, or when one
    already set it."""
    others = [listen for server in config.servers() for listen in server.listens
              if (listen.addr, listen.port) == (addr, port)]
    return not others or any(listen.http2 for listen in others)


def serves_in_place(config: Config, source: lookup.Match, https_port: int,
                    covered: Sequence[str]) -> bool:
    """Can the block that answers the name on the HTTP port serve it over
    HTTPS itself (a TLS listen and the certificate added to it), instead of
    a copy?  Only when that changes nothing else nginx does:

    - it answers the name by name (a catch-all would take every other name
      on the HTTPS port);
    - it serves requests (a redirect-only block cannot serve HTTPS), and no
      redirect of it to https on the requested host would then answer HTTPS
      requests too (a loop);
    - the certificate covers every name it answers (literal, wildcard or
      regex): a name the certificate does not cover would be served it on
      the HTTPS port, taken from whichever block serves it there now, and
      the block's certificate could then never be replaced by one without
      that name (another lineage for it would be refused);
    - no other block answers one of its names by name on the HTTPS port
      (nginx: "conflicting server name").
    """
    node, server = source.server.ref, source.server
    names = _host_names(server.names)
    if source.kind == lookup.DEFAULT or not names:
        return False
    if rewrites.only_redirects(config, node) or redirects.redirects_to_itself(config, node, names):
        return False
    if not all(certificate_lines.covers_server_name(covered, n) for n in names):
        return False
    for name in names:
        if name.startswith(("~", "*", ".")) or name.endswith(".*"):
            continue
        try:
            others = sites.answering(config, name, https_port, use_default=False)
        except sites.SiteError:
            return False
        if any(m.server.ref is not node for m in others):
            return False
    return True


def _tls_listens(config: Config, source: lookup.Match, http_port: int, https_port: int,
                 http2: Optional[str]) -> List[str]:
    """One TLS listen on https_port per address source listens on at
    http_port (socket options and default_server stay with the first
    listen of an address:port, as nginx allows them once)."""
    addrs: List[str] = []
    for listen in source.server.listens:
        if listen.port == http_port and listen.addr not in addrs:
            addrs.append(listen.addr)
    # `listen [::]:80 ipv6only=off;` takes IPv4 too: its TLS listen must,
    # unless another block's listen on that address:port sets the options.
    dual_stack = {lookup.parse_listen(n.args) for n in config.expand(source.server.ref.children)
                  if n.name == "listen" and "ipv6only=off" in n.args}
    dual_addrs = {listen.addr for listen in dual_stack if listen and listen.port == http_port}
    lines = []
    for addr in addrs or ["*"]:
        flags = "ssl"
        if http2 == HTTP2_LISTEN and http2_listen_stays_local(config, addr, https_port):
            flags += " http2"
        if addr in dual_addrs and not any(
                (listen.addr, listen.port) == (addr, https_port)
                for server in config.servers() for listen in server.listens):
            flags += " ipv6only=off"
        lines.append(f"listen {https_port if addr == '*' else f'{addr}:{https_port}'} "
                     f"{flags};  {edit.MARK}")
    return lines


def add_tls_in_place(config: Config, source: lookup.Match, http_port: int, https_port: int,
                     http2: Optional[str] = None) -> Node:
    """Make the block that answers the name on http_port serve HTTPS too:
    a TLS listen on https_port after its last listen, for each address it
    listens on at http_port (and ``http2 on;`` where that is the form).
    Nothing else of the block changes; set_certificate adds the pair.  A
    block without listen directives listens on *:80 (lookup.DEFAULT_LISTEN):
    a TLS listen would end that, so it is said first."""
    node = source.server.ref
    lines = _tls_listens(config, source, http_port, https_port, http2)
    if not any(n.name == "listen" for n in config.expand(node.children)):
        lines.insert(0, f"listen {lookup.DEFAULT_LISTEN.port};  {edit.MARK}")
    if http2 == HTTP2_DIRECTIVE and not config.directives(node, "http2"):
        lines.append(f"http2 on;  {edit.MARK}")
    listens = [i for i, n in enumerate(node.children) if n.name == "listen"]
    after = max(listens or [i for i, n in enumerate(node.children)
                            if n.name == "server_name"], default=-1)
    edit.insert(node, after + 1, "\n".join(lines), config.file_of(node).newline, node.file)
    config.mark_changed(node)
    return node


def make_https_server(config: Config, source: lookup.Match, name: str,
                      http_port: int, https_port: int, http2: Optional[str] = None,
                      covered: Sequence[str] = ()) -> Node:
    """The block that serves name over HTTPS when none does yet: the block
    that answers it on http_port itself, given a TLS listen, where that
    changes nothing else (serves_in_place); else a copy of it right after
    it that listens on https_port with ssl, on the same addresses (a copy
    of a redirect-only block without its locations and challenge guard,
    which a redirect answering every request never reaches).

    Socket options and default_server are not copied (nginx allows them once
    per address:port).  The copy answers only the names the certificate
    covers (covered; name alone for a catch-all source).  A block that
    redirects to another name is copied with its redirect; one that
    redirects to itself on HTTPS cannot be.  http2 is how the running nginx
    turns HTTP/2 on (build_info.HTTP2_LISTEN or HTTP2_DIRECTIVE), None for no
    HTTP/2.
    """
    node = source.server.ref
    _refuse_a_redirect_only_block(config, node, name, http_port, https_port)
    if serves_in_place(config, source, https_port, covered or [name]):
        return add_tls_in_place(config, source, http_port, https_port, http2)
    keep = _names_of_the_copy(source, name, covered)
    _refuse_a_redirect_loop(config, node, name, keep, http_port, https_port)
    lines = _tls_listens(config, source, http_port, https_port, http2)
    if http2 == HTTP2_DIRECTIVE and not config.directives(node, "http2"):
        lines.append(f"http2 on;  {edit.MARK}")
    newline = config.file_of(node).newline
    holder = config.holder(node)
    index = next(i for i, n in enumerate(holder.children) if n is node)
    copy = edit.copy_after(holder, index, newline)
    _replace_listens(copy, "\n".join(lines), newline)
    if rewrites.locations_unreachable(config, node):
        # Over HTTPS the redirect answers every request before a location
        # is chosen: the copy needs neither locations (the challenge one
        # included) nor the guard that lets challenges past on plain HTTP.
        for i in reversed(range(len(copy.children))):
            child = copy.children[i]
            if child.name == "location" or rewrites.is_guard(child):
                edit.remove(copy, i)
    if keep != list(source.server.names):
        _replace_server_names(copy, keep, newline)
        _keep_server_name_value(copy, source.server.names, keep)
    edit.mark_block(holder, index + 1)  # every line of the copy is one the plugin added
    config.mark_changed(copy)
    return copy


def _refuse_a_redirect_only_block(config: Config, node: Node, name: str, http_port: int,
                                  https_port: int) -> None:
    """A block that only redirects name to HTTPS cannot be the HTTPS one."""
    if redirects.redirects_to_https(config, node, name, to_itself=True):
        raise sites.SiteError(
            f"{name} has no server block on port {https_port}, and the one on port "
            f"{http_port} ({sites.where(node)}) only redirects to HTTPS; add an HTTPS server "
            "block for it", node=node)


def _names_of_the_copy(source: lookup.Match, name: str, covered: Sequence[str]) -> List[str]:
    """The server_names an HTTPS copy of source answers: those the
    certificate covers (name alone for a catch-all source)."""
    if source.kind == lookup.DEFAULT:
        return [name]
    return [n for n in source.server.names
            if n == name or certificate_lines.covers(covered, n)] or [name]


def _refuse_a_redirect_loop(config: Config, node: Node, name: str, keep: Sequence[str],
                            http_port: int, https_port: int) -> None:
    """A copy answering keep over HTTPS must not redirect to itself."""
    loop = redirects.redirect_loop_over_https(config, node, keep, https_port)
    if loop is not None:
        raise sites.SiteError(
            f"{name} has no server block on port {https_port}, and the one on port "
            f"{http_port} ({sites.where(node)}) redirects some requests to https on the same "
            f"host ({sites.where(loop)}): a copy of it for HTTPS would redirect them to "
            "themselves; add an HTTPS server block for it", node=loop)


def _replace_listens(copy: Node, new_listens: str, newline: str) -> None:
    """The copy's listens become new_listens, in the place of its first."""
    listens = [i for i, n in enumerate(copy.children) if n.name == "listen"]
    for i in reversed(listens[1:]):
        edit.remove(copy, i)
    if listens:
        edit.replace(copy, listens[0], new_listens, newline, copy.file)
    else:
        edit.insert(copy, 0, new_listens, newline, copy.file)


def _replace_server_names(copy: Node, keep: Sequence[str], newline: str) -> None:
    """The copy's server_name lines become one, for keep."""
    names = [i for i, n in enumerate(copy.children) if n.name == "server_name"]
    for i in reversed(names[1:]):
        edit.remove(copy, i)
    if names:
        edit.set_args(copy, names[0], keep)
    else:
        edit.insert(copy, 0, f"server_name {' '.join(keep)};  {edit.MARK}", newline,
                    copy.file)


_SERVER_NAME_VARIABLE = re.compile(r"\$(?:\{server_name\}|server_name\b)")


def _keep_server_name_value(copy: Node, names: Sequence[str], kept: Sequence[str]) -> None:
    """$server_name is a block's first name (effective.server_name_variable):
    a copy that answers fewer names may have another first name, so its
    own directives that use $server_name get the source block's value
    written out, and the copy serves what the source serves (``root
    /srv/$server_name``).  Included files are shared with the source and
    stay as they are; a value that holds a ``$`` (a regex) is not written."""
    hostname = effective.machine_hostname()
    value = effective.server_name_variable(list(names), hostname)
    if value == effective.server_name_variable(list(kept), hostname) or "$" in value:
        return
    pending = [copy]
    while pending:
        block = pending.pop()
        for i, node in enumerate(block.children):
            if node.children is not None:
                pending.append(node)
            elif node.name != "include" and \
                    any(_SERVER_NAME_VARIABLE.search(arg) for arg in node.args):
                edit.set_args(block, i, [_SERVER_NAME_VARIABLE.sub(lambda _: value, arg)
                                         for arg in node.args])
