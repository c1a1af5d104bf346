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
import ipaddress
import os
import re
import socket
from typing import Dict, List, NamedTuple, Optional, Tuple

from certbot_nginx_webroot import lookup, nginx_regex
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node
from certbot_nginx_webroot.problems import Problem

# Content handlers: a location with one of these does not serve files.
CONTENT_HANDLERS = ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass",
                    "memcached_pass", "return", "rewrite", "internal", "empty_gif",
                    "stub_status", "perl", "js_content", "content_by_lua_block",
                    "content_by_lua", "content_by_lua_file")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class Unknown(Problem):
    """The configuration does not say something the plugin could act on
    (node: the directive that leaves it open)."""


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
            rx = nginx_regex.compile(match.pattern, match.kind == "~*")
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
    """What keeps an anonymous client from a public address (the CA) out,
    with the directive."""
    auth_basic: Optional[Node]
    auth_request: Optional[Node]
    deny: Optional[Node]

    def __bool__(self) -> bool:
        return any(self)


# The CA validates from public addresses it does not announce, over IPv4 or
# IPv6.  An access rule decides for it when its range holds every public
# address of the family (`all`, 0.0.0.0/0, 2000::/3 or wider); a narrower
# range names particular networks (an office, loopback, a blocklist), which
# the plugin takes the CA's addresses not to be in.
PUBLIC_SPACE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("2000::/3"))


def decides_for_public(rule: Node, public: "ipaddress._BaseNetwork") -> bool:
    """Does this allow/deny rule apply to every public address of the family
    of public?  (nginx tries IPv4 rules on IPv4 clients, IPv6 rules on IPv6
    ones, `all` on both, `unix:` on unix-socket clients only.)"""
    if rule.args == ["all"]:
        return True
    if len(rule.args) != 1:
        return False
    try:
        network = ipaddress.ip_network(rule.args[0], strict=False)
    except ValueError:  # unix:, or what nginx -t would refuse
        return False
    return network.version == public.version and public.subnet_of(network)


def first_rule_for_public(rules: List[Node]) -> List[Optional[Node]]:
    """For each family of PUBLIC_SPACE, the rule nginx's access module
    applies to a public client: the first that matches it (None: no rule
    matches, and the module lets the request pass)."""
    return [next((r for r in rules if decides_for_public(r, public)), None)
            for public in PUBLIC_SPACE]


def access(config: Config, levels: List[Node]) -> Access:
    """The access checks in force at the innermost of levels that keep an
    anonymous client from a public address out (empty when it passes).

    allow/deny: the rules of the innermost level that has any (a level with
    rules of its own replaces the outer ones), the first that matches the
    client deciding.  auth_basic and auth_request refuse an anonymous client.
    With ``satisfy any`` one check that admits it is enough: an allow rule
    for it, or no check at all that applies."""
    def on(name: str) -> Optional[Node]:
        found = inherited(config, levels, name)
        return found[0] if found and found[0].args[:1] != ["off"] else None
    verdicts = first_rule_for_public(inherited(config, levels, "allow", "deny"))
    deny = next((rule for rule in verdicts if rule is not None and rule.name == "deny"), None)
    satisfy = inherited(config, levels, "satisfy")
    if satisfy and satisfy[0].args == ["any"] and \
            all(rule is not None and rule.name == "allow" for rule in verdicts):
        return Access(None, None, None)
    return Access(on("auth_basic"), on("auth_request"), deny)


def server_name_variable(names: List[str], hostname: str) -> str:
    """nginx's $server_name for a block whose server_name arguments are
    names: its first name (whichever name the request was for), lowercased,
    without the leading dot of ``.example.com``; a regular expression as
    written (with its ``~``); ``$hostname`` the machine's host name; "" for
    a block without server_name (ngx_http_core_server_name and
    ngx_http_core_merge_srv_conf)."""
    if not names:
        return ""
    first = names[0]
    if first.startswith("~"):
        return first
    if first.lower() == "$hostname":
        return hostname
    first = first.lower()
    return first[1:] if first.startswith(".") else first


def machine_hostname() -> str:
    """nginx's $hostname: gethostname(), lowercased."""
    return socket.gethostname().lower()


def server_name_captures(names: List[str], host: str) -> Dict[str, str]:
    """The named captures nginx sets when it chose the block for host by a
    regular expression of its server_name (the first that matches; only when
    no exact or wildcard name matches, as nginx looks those up first)."""
    rank = lookup.server_rank(host, names)
    if rank is None or rank[0] != lookup.REGEX:
        return {}
    for name in names:
        rx = nginx_regex.compile(name[1:], True) if name.startswith("~") else None
        found = rx.search(host) if rx is not None else None
        if found:
            return {key: value or "" for key, value in found.groupdict().items()}
    return {}


def request_variables(config: Config, server: Node, host: str) -> Dict[str, str]:
    """The variables a document path may use, with the values nginx gives
    them for the CA's request for host (the Host header it sends) to server:
    $host (the Host header without port, lowercased), $http_host (the header
    as sent), $server_name, $hostname, and the named captures of the
    server_name regex that chose the block."""
    names = next((list(s.names) for s in config.servers() if s.ref is server), [])
    hostname = machine_hostname()
    request_host = host.lower().rstrip(".")
    return dict(server_name_captures(names, request_host), host=request_host,
                http_host=host, server_name=server_name_variable(names, hostname),
                hostname=hostname)


class MappedPath(NamedTuple):
    """A file (or directory) nginx maps a request path to, split where the
    admin's path ends: base is the root, or the directory holding an alias's
    target; below are the parts the request path names under it.  Challenge
    files are never written through a symlink below base (base itself may be
    one, as a webroot may)."""
    base: str
    below: str

    @property
    def path(self) -> str:
        return os.path.join(self.base, self.below) if self.below else self.base

    @property
    def parent(self) -> "MappedPath":
        return MappedPath(self.base, os.path.dirname(self.below))


def alias_base(alias_dir: str, pattern: str) -> str:
    """Where the admin's path ends in an alias's directory for a location
    with this prefix: nginx maps the prefix onto the alias, so the alias's
    last component stands where the prefix's last directory would under a
    root, and is checked like it; an alias that repeats the prefix's last
    components (a root written as an alias: ``location /.well-known/ {
    alias /srv/site/.well-known/; }``) has all of those checked, as under
    ``root /srv/site``."""
    alias_parts = alias_dir.rstrip("/").split("/")
    prefix_parts = [part for part in pattern.split("/") if part]
    repeated = 0
    while repeated < min(len(alias_parts) - 1, len(prefix_parts)) and \
            alias_parts[-1 - repeated] == prefix_parts[-1 - repeated]:
        repeated += 1
    return "/".join(alias_parts[:-max(repeated, 1)]) or "/"


def document_path(config: Config, server: Node, chain: List[Node], uri: str,
                  prefix: str, host: str) -> MappedPath:
    """The file nginx maps uri to in the innermost of chain (root or alias,
    inherited), for the CA's request for host (variables as nginx fills
    them: request_variables); relative paths from nginx's prefix.

    :raises Unknown: the path depends on other variables or a regex capture
    """
    variables = request_variables(config, server, host)

    def filled(path: str, node: Optional[Node]) -> str:
        def fill(m: "re.Match[str]") -> str:
            name = m.group(1) or m.group(2)
            if name not in variables:
                raise Unknown(f"the document path {path} depends on ${name}", node=node)
            return variables[name]
        return os.path.join(prefix, _VARIABLE.sub(fill, path))

    for node in reversed(chain):
        aliases = own(config, node, "alias")
        if aliases and aliases[0].args:
            match = location_match(node)
            if match is None or match.kind in ("~", "~*"):
                raise Unknown(f"the alias at {aliases[0].file}:{aliases[0].line} is in a "
                              "regex location; its path depends on the match", node=aliases[0])
            alias = filled(aliases[0].args[0], aliases[0])
            # nginx joins the strings: "alias /srv/x;" for "/p/" maps /p/f to /srv/xf.
            path = os.path.normpath(alias + uri[len(match.pattern):])
            base = os.path.normpath(alias_base(os.path.normpath(alias), match.pattern))
            if base != "/" and not path.startswith(base + "/"):
                base = os.path.dirname(path)
            return MappedPath(base, os.path.relpath(path, base))
        roots = own(config, node, "root")
        if roots and roots[0].args:
            return MappedPath(os.path.normpath(filled(roots[0].args[0], roots[0])), uri.lstrip("/"))
    roots = inherited(config, scopes(config, server, []), "root")
    if roots and roots[0].args:
        return MappedPath(os.path.normpath(filled(roots[0].args[0], roots[0])), uri.lstrip("/"))
    return MappedPath(os.path.normpath(filled("html", None)), uri.lstrip("/"))


def serves_files(config: Config, level: Node, uri_variable: str = "$uri") -> Optional[Node]:
    """None when this location (or server, without locations) serves the
    request's file from disk; else the directive that answers instead."""
    for node in own(config, level, *CONTENT_HANDLERS):
        return node
    for node in own(config, level, "try_files"):
        if not any(uri_variable in arg for arg in node.args[:-1]):
            return node
    return None
