"""What nginx makes of a server block: the location it picks for a URI and
the directives in force there.

One view, used for every decision the plugin takes about a block: includes
are expanded, and a directive not set in a location is inherited from the
enclosing location, the server and the http block, the way nginx merges its
configuration (the innermost level that sets it wins; ``allow``/``deny``
rules count as one list).  Directives that nginx does not inherit
(``try_files``, ``proxy_pass`` and the other content handlers, the rewrite
module's ``return``/``rewrite``/``if``) are read from their own level only.

Location choice follows ``ngx_http_core_find_location``: an exact ``=``
match wins outright; otherwise the longest matching prefix is remembered and
its nested locations are searched; then, unless that prefix has ``^~``, the
regular expressions of the level are tried in order and the first match
(with its own nested locations) wins.
"""
import os
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node

# Content handlers: a location with one of these does not serve files.
CONTENT_HANDLERS = ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass",
                    "memcached_pass", "return", "rewrite", "internal", "empty_gif",
                    "stub_status", "perl", "js_content", "content_by_lua_block",
                    "content_by_lua", "content_by_lua_file")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class Unknown(ValueError):
    """The configuration does not say something the plugin could act on."""


class LocationMatch(NamedTuple):
    """A location directive's arguments, as nginx classifies them."""
    kind: str      # "=", "^~", "prefix", "~", "~*", "@"
    pattern: str


def location_match(node: Node) -> Optional[LocationMatch]:
    """How a location matches; nginx also accepts the modifier glued to the
    pattern (``location =/x``, ``location ~\\.php$``)."""
    args = node.args
    if len(args) == 2:
        return LocationMatch(args[0] if args[0] in ("=", "^~", "~", "~*") else "prefix",
                             args[1])
    if len(args) != 1:
        return None
    arg = args[0]
    for modifier in ("^~", "~*", "=", "~"):
        if arg.startswith(modifier) and len(arg) > len(modifier):
            return LocationMatch(modifier, arg[len(modifier):])
    return LocationMatch("@" if arg.startswith("@") else "prefix", arg)


def pcre(pattern: str, caseless: bool) -> Optional["re.Pattern[str]"]:
    """A PCRE pattern as a Python one (named groups in Python's spelling);
    None when Python cannot read it."""
    pattern = re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", pattern)
    pattern = re.sub(r"\(\?'([A-Za-z_]\w*)'", r"(?P<\1>", pattern)
    try:
        return re.compile(pattern, re.IGNORECASE if caseless else 0)
    except re.error:
        return None


def _locations(config: Config, block: Node) -> List[Tuple[Node, LocationMatch]]:
    found = []
    for node in config.expand(block.children):
        if node.name == "location" and node.children is not None:
            match = location_match(node)
            if match is not None and match.kind != "@":
                found.append((node, match))
    return found


def select_location(config: Config, block: Node, uri: str) -> List[Node]:
    """The locations nginx picks for uri in block (a server block), outer
    first; empty when none matches (the server's own configuration serves)."""
    return _find(config, block, uri)[0]


def _find(config: Config, block: Node, uri: str) -> Tuple[List[Node], bool]:
    """(chain, final): final when an exact or regex location decided."""
    locations = _locations(config, block)
    for node, match in locations:
        if match.kind == "=" and match.pattern == uri:
            return [node], True
    best: Optional[Tuple[Node, LocationMatch]] = None
    for node, match in locations:
        if match.kind in ("prefix", "^~") and uri.startswith(match.pattern):
            if best is None or len(match.pattern) > len(best[1].pattern):
                best = (node, match)
    chain: List[Node] = []
    if best is not None:
        nested, final = _find(config, best[0], uri)
        if final:
            return [best[0]] + nested, True
        chain = [best[0]] + nested
        if best[1].kind == "^~":
            return chain, False
    for node, match in locations:
        if match.kind in ("~", "~*"):
            rx = pcre(match.pattern, match.kind == "~*")
            if rx is not None and rx.search(uri):
                return [node] + _find(config, node, uri)[0], True
    return chain, False


def http_of(config: Config, server: Node) -> Optional[Node]:
    """The http block a server block belongs to."""
    for http in config.http_blocks():
        if any(node is server for node in config.expand(http.children)):
            return http
    return None


def scopes(config: Config, server: Node, chain: List[Node]) -> List[Node]:
    """Every level whose settings apply in the innermost of chain, outermost
    (http) first."""
    http = http_of(config, server)
    return ([http] if http is not None else []) + [server] + list(chain)


def inherited(config: Config, levels: List[Node], *names: str) -> List[Node]:
    """The directives called one of names in force at the innermost of levels:
    those of the innermost level that sets any of them."""
    for level in reversed(levels):
        found = [n for n in config.expand(level.children) if n.name in names]
        if found:
            return found
    return []


def own(config: Config, level: Node, *names: str) -> List[Node]:
    """Directives set at this level itself (includes expanded)."""
    return [n for n in config.expand(level.children) if n.name in names]


class Access(NamedTuple):
    """What keeps an anonymous client (the CA) out, with the directive."""
    auth_basic: Optional[Node]
    auth_request: Optional[Node]
    deny: Optional[Node]

    def __bool__(self) -> bool:
        return any(self)


def access(config: Config, levels: List[Node]) -> Access:
    """The access checks in force at the innermost of levels that an
    anonymous client from an address nobody listed would fail."""
    def on(name: str) -> Optional[Node]:
        found = inherited(config, levels, name)
        return found[0] if found and found[0].args[:1] != ["off"] else None
    deny = None
    for rule in inherited(config, levels, "allow", "deny"):
        if rule.args == ["all"]:  # the first rule for every address decides
            deny = rule if rule.name == "deny" else None
            break
    return Access(on("auth_basic"), on("auth_request"), deny)


def document_path(config: Config, server: Node, chain: List[Node], uri: str,
                  prefix: str, host: str) -> str:
    """The file nginx maps uri to in the innermost of chain (root or alias,
    inherited), with $host and $server_name filled in for host.

    :raises Unknown: the path depends on other variables or a regex capture
    """
    path = None
    for node in reversed(chain):
        aliases = own(config, node, "alias")
        if aliases and aliases[0].args:
            match = location_match(node)
            if match is None or match.kind in ("~", "~*"):
                raise Unknown(f"the alias at {aliases[0].file}:{aliases[0].line} is in a "
                              "regex location; its path depends on the match")
            path = aliases[0].args[0] + uri[len(match.pattern):]
            break
        roots = own(config, node, "root")
        if roots and roots[0].args:
            path = roots[0].args[0] + uri
            break
    if path is None:
        roots = inherited(config, scopes(config, server, []), "root")
        path = (roots[0].args[0] if roots and roots[0].args else "html") + uri
    values: Dict[str, str] = {"host": host, "http_host": host, "server_name": host}

    def fill(m: "re.Match[str]") -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise Unknown(f"the document path {path} depends on ${name}")
        return values[name]
    path = _VARIABLE.sub(fill, path)
    return os.path.normpath(os.path.join(prefix, path))


def serves_files(config: Config, level: Node, uri_variable: str = "$uri") -> Optional[Node]:
    """None when this location (or server, without locations) serves the
    request's file from disk; else the directive that answers instead."""
    for node in own(config, level, *CONTENT_HANDLERS):
        return node
    for node in own(config, level, "try_files"):
        if not any(uri_variable in arg for arg in node.args[:-1]):
            return node
    return None
