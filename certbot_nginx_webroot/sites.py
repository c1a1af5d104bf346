"""What the plugin does to server blocks, as operations on the config model:
the challenge location (or the block's own, adopted), the guard that lets
challenges past server-level redirects, our own server block for names no
block answers, HTTPS blocks and certificates, and the redirect enhancement.
Every decision reads the block through effective.py, nginx's own view.

No certbot here: problems are :class:`SiteError` with a message that names
the file and line; the plugin passes it on.  Every function edits the tree
in memory and marks what it changed; nothing is written until Config.save.
"""
import fnmatch
import os
import re
from typing import List, Optional, Sequence, Tuple

from acme import challenges

from certbot_nginx_webroot import edit, effective, lookup, nginx_regex, parser
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.build_info import HTTP2_DIRECTIVE, HTTP2_LISTEN
from certbot_nginx_webroot.parser import Node
from certbot_nginx_webroot.problems import Problem

CHALLENGE_PREFIX = "/" + challenges.HTTP01.URI_ROOT_PATH + "/"
OWN_FILE = "certbot-nginx-webroot.conf"


class SiteError(Problem):
    """The configuration cannot be edited safely; says where and why (node:
    the block or directive that stops the edit)."""


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
                        "first and warns \"conflicting server name\"); remove the duplicate",
                        node=err.node) from err


def challenge_location(root: str, opening: Sequence[str] = ()) -> str:
    """The location block nginx serves challenge files through: only the
    files in it, all as text/plain (the empty types map; default_type alone
    would still serve x.html as text/html), and nothing a symlink in the
    directory points to (nginx checks each part below the root).  Only GET
    (and with it HEAD) is answered: limit_except refuses every other method
    before the content phase, so a WebDAV site's inherited dav_methods
    cannot PUT, DELETE, MKCOL, COPY or MOVE a challenge file.  limit_except
    is core nginx (dav_methods off would fail nginx -t where the dav module
    is not built in), and its own ``deny all`` rule list is not the one
    opening replaces.  opening are the directives that let the CA past the
    server's access checks."""
    lines = [f"location ^~ {CHALLENGE_PREFIX} {{  {edit.MARK}",
             f"    root {parser.quote(root)};  {edit.MARK}",
             f"    types {{ }}  {edit.MARK}",
             f"    default_type text/plain;  {edit.MARK}",
             f"    disable_symlinks on from=$document_root;  {edit.MARK}",
             f"    try_files $uri =404;  {edit.MARK}",
             f"    limit_except GET {{  {edit.MARK}",
             f"        deny all;  {edit.MARK}",
             f"    }}  {edit.MARK}"]
    lines += [f"    {directive}  {edit.MARK}" for directive in opening]
    return "\n".join(lines + [f"}}  {edit.MARK}"])


def _is_own_challenge_location(node: Node) -> bool:
    """A location the plugin added: the challenge prefix with ``^~``, every
    line of it marked (any version's shape)."""
    if node.name != "location" or node.children is None or \
            node.args != ["^~", CHALLENGE_PREFIX]:
        return False
    # The mark after the closing brace belongs to the text after the block.
    lines = [line for line in parser.dump_node(node).splitlines() if line.strip()]
    return len(lines) > 1 and lines[-1].strip() == "}" and \
        all(line.rstrip().endswith(edit.MARK) for line in lines[:-1])


def limit_challenge_methods(config: Config, server: Node) -> bool:
    """Bring a challenge location an older version of the plugin added to
    server up to GET/HEAD only (see challenge_location); True when it was
    edited.  Called when a certificate is installed, never on renewals:
    those edit nothing."""
    changed = False
    for node in server.children:
        if not _is_own_challenge_location(node) or \
                any(n.name == "limit_except" for n in node.children):
            continue
        after = max((i for i, n in enumerate(node.children) if n.name == "try_files"),
                    default=len(node.children) - 1)
        edit.insert(node, after + 1, f"limit_except GET {{  {edit.MARK}\n"
                    f"    deny all;  {edit.MARK}\n}}  {edit.MARK}",
                    config.file_of(server).newline, server.file)
        config.mark_changed(server)
        changed = True
    return changed


def challenge_uri() -> str:
    """A challenge URL path as the CA asks for it (the token is made up; it
    has the characters real ones have)."""
    return CHALLENGE_PREFIX + "nginx-webroot_Probe-0123456789abcdefghijKLMNOPQRS"


def _for_challenges(node: Node) -> bool:
    """Is this location written for challenge requests alone?"""
    match = effective.location_match(node)
    if match is None:
        return False
    if match.kind in ("~", "~*"):
        return "acme" in match.pattern and "challenge" in match.pattern
    return match.pattern.startswith(CHALLENGE_PREFIX.rstrip("/"))


def _for_well_known(node: Node) -> bool:
    match = effective.location_match(node)
    return match is not None and "well-known" in match.pattern


def _opening(config: Config, levels: List[Node]) -> List[str]:
    """Directives that turn off, for one location, the access checks in
    force at the innermost of levels that would keep the CA out."""
    blocked = effective.access(config, levels)
    return ((["auth_basic off;"] if blocked.auth_basic else [])
            + (["auth_request off;"] if blocked.auth_request else [])
            + (["allow all;"] if blocked.deny else []))


def served_challenge_dir(config: Config, server: Node, host: str,
                         prefix: str) -> Optional[effective.MappedPath]:
    """The directory server already serves challenge files from for host,
    through a location of its own for them (nginx's choice for the challenge
    path, nested locations, root/alias inheritance and try_files included);
    None when it has none, so the plugin's location must go in.

    :raises SiteError: the location nginx picks for challenges does not
        serve files from a directory, or keeps the CA out
    """
    uri = challenge_uri()
    chain = effective.select_location(config, server, uri)
    node = chain[-1] if chain else None
    if node is None or not (_for_challenges(node) or _for_well_known(node)):
        return None
    handler = effective.serves_files(config, node)
    if handler is not None:
        if not _for_challenges(node):
            return None  # e.g. a /.well-known proxy: the plugin's longer prefix wins
        raise SiteError(
            f"the location at {where(node)} answers the challenge path for {host} with "
            f"{handler.name} ({where(handler)}) instead of files from a directory; make it "
            "serve files (root or alias) or remove it", node=node)
    problem = keeps_the_ca_out(config, server, chain)
    if problem:
        raise SiteError(f"the location at {where(node)} serves challenges for {host}, "
                        f"but {problem}", node=node)
    try:
        path = effective.document_path(config, server, chain, uri, prefix, host)
    except effective.Unknown as err:
        raise SiteError(f"the location at {where(node)} serves challenges for {host} from "
                        f"a path the plugin cannot name: {err}", node=node) from err
    if os.path.basename(path.path) != os.path.basename(uri):
        raise SiteError(f"the location at {where(node)} maps {uri} for {host} to "
                        f"{path.path}, not to a file of that name in a directory; end its "
                        "alias with / as its prefix ends", node=node)
    return path.parent


def keeps_the_ca_out(config: Config, server: Node, chain: List[Node]) -> Optional[str]:
    """What keeps the CA (anonymous, from a public address) out of the
    innermost location of chain in server (the server itself, without one),
    and what to add to let it in there alone; None when it may pass
    (effective.access)."""
    levels = effective.scopes(config, server, chain)
    checks = [node for node in effective.access(config, levels) if node is not None]
    if not checks:
        return None
    named = " and ".join(
        f"{' '.join([node.name] + [parser.quote(arg) for arg in node.args])} ({where(node)})"
        for node in sorted(checks, key=lambda node: (node.file, node.line)))
    opening = " ".join(_opening(config, levels))
    fix = (f"add {opening} to that location" if chain else
           f"add a location ^~ {CHALLENGE_PREFIX} with {opening} to that block")
    return (f"{named} {'keeps' if len(checks) == 1 else 'keep'} the CA out (it asks from "
            f"public addresses, not from this machine); {fix}")


def ca_kept_out(config: Config, server: Node, host: str) -> Optional[str]:
    """Why nginx keeps the CA out of server's answer to host's challenge
    requests, naming the location (or the server block, without one) and
    the directives; None when it lets the CA in."""
    chain = effective.select_location(config, server, challenge_uri())
    problem = keeps_the_ca_out(config, server, chain)
    if problem is None:
        return None
    place = f"the location at {where(chain[-1])}" if chain else \
        f"the server block at {where(server)}"
    return f"{place} serves challenges for {host}, but {problem}"


def ensure_challenge_location(config: Config, server: Node, root: str, host: str,
                              prefix: str = "/") -> Optional[effective.MappedPath]:
    """Make server serve host's challenge files: the directory it already
    serves them from (nothing edited), else None after inserting the
    plugin's location serving root, opened past the server's access checks.

    prefix is nginx's prefix, which relative paths are taken from.
    """
    served = served_challenge_dir(config, server, host, prefix)
    if served is not None:
        guard_challenges(config, server)  # a return before it would answer first
        return served
    uri = challenge_uri()
    for node in config.expand(server.children):
        match = effective.location_match(node) if node.name == "location" else None
        if match and match.kind in ("prefix", "^~") and match.pattern == CHALLENGE_PREFIX:
            chosen = effective.select_location(config, server, uri)
            raise SiteError(
                f"the location at {where(node)} is for challenges, but nginx answers them "
                f"from the location at {where(chosen[-1])} first; make it "
                f"\"location ^~ {CHALLENGE_PREFIX}\"", node=node)
    opening = _opening(config, effective.scopes(config, server, []))
    children = server.children
    index = next((i for i, n in enumerate(children) if n.name == "location"), len(children))
    edit.insert(server, index, challenge_location(root, opening),
                config.file_of(server).newline, server.file)
    config.mark_changed(server)
    guard_challenges(config, server)
    return None


def answers_every_request(node: Node) -> bool:
    """Would this server-level directive answer (or rewrite away) a challenge
    request before any location is chosen, whatever the request?  An ``if``
    is conditional, so it never does."""
    if node.name == "return":
        return True
    if node.name == "rewrite" and node.args:
        rx = nginx_regex.compile(node.args[0], False)
        return rx is None or bool(rx.search(challenge_uri()))
    return False


def _may_answer(config: Config, node: Node) -> bool:
    """Is node (or, for an include, a directive in it) a server-level
    rewrite directive that may answer a challenge request?"""
    if node.name == "include":
        return any(_may_answer(config, n) for n in config.expand([node]))
    if node.name == "if" and node.children is not None:
        return not is_guard(node) and any(n.name in ("return", "rewrite")
                                          for n in config.expand(node.children))
    return answers_every_request(node)


def is_guard(node: Node) -> bool:
    """An ``if`` written to let challenge requests past server-level
    redirects (the plugin's, or certbot's own form with $request_uri)."""
    return node.name == "if" and "acme-challenge" in " ".join(node.args)


# An ACME token is base64url without padding (RFC 8555, 8.3): the CA asks
# for nothing else below the prefix, so nothing else needs to get past.
TOKEN_CHARACTERS = "-_A-Za-z0-9"
_SAMPLE_TOKENS = ("a", "Z", "0", "-", "_", "-_-", "0123456789", "abcdefghijklmnopqrstuvwxyz",
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "A" * 86, "Tok-en_9")


def challenge_uri_pattern() -> str:
    """A regex for the challenge URIs a CA asks for: the prefix, then one
    token (no dot, no slash: nothing a regex location for file types or a
    deeper location could take)."""
    return "^" + CHALLENGE_PREFIX.replace(".", "\\.") + f"[{TOKEN_CHARACTERS}]+$"


def _takes_tokens(match: effective.LocationMatch) -> bool:
    """Could this exact or prefix location, longer than the challenge
    prefix, take some challenge URIs?"""
    if match.kind not in ("=", "prefix", "^~") or len(match.pattern) <= len(CHALLENGE_PREFIX) \
            or not match.pattern.startswith(CHALLENGE_PREFIX):
        return False
    rest = match.pattern[len(CHALLENGE_PREFIX):]
    return re.fullmatch(f"[{TOKEN_CHARACTERS}]+", rest) is not None


def serves_challenge_files(config: Config, server: Node) -> bool:
    """Does nginx answer every challenge URI a CA may ask of server from
    one location for challenges that serves files from a directory (root
    or alias, no proxy_pass, return, ... and a try_files with $uri)?  Then,
    and only then, letting those URIs past the server-level rewrite
    directives exposes challenge files and nothing else.  nginx's own
    choice of location is asked for a sample of token shapes (a regex
    location may take some of them), and no exact or longer prefix location
    may take part of the token space."""
    chain = effective.select_location(config, server, challenge_uri())
    if not chain:
        return False
    node = chain[-1]
    if not (_for_challenges(node) or _for_well_known(node)) or \
            effective.serves_files(config, node) is not None:
        return False
    for token in _SAMPLE_TOKENS:
        other = effective.select_location(config, server, CHALLENGE_PREFIX + token)
        if not other or other[-1] is not node:
            return False
    return not any(_takes_tokens(match) for match in _all_locations(config, server.children))


def _all_locations(config: Config, nodes: List[Node]):
    """How every location in nodes matches, nested ones included."""
    for node in config.expand(nodes):
        if node.name == "location" and node.children is not None:
            match = effective.location_match(node)
            if match is not None:
                yield match
            yield from _all_locations(config, node.children)


def guard(uri_variable: str = "$uri") -> str:
    """Ends the server-level rewrite directives for challenge requests only:
    nginx runs a server's return/rewrite/if in order before it picks a
    location, and ``break`` stops that run, so the request goes on to the
    challenge location.  $uri is what location matching uses (decoded, dot
    segments resolved), so nothing else can slip past."""
    return (f'if ({uri_variable} ~ "{challenge_uri_pattern()}") {{  {edit.MARK}\n'
            f"    break;  {edit.MARK}\n"
            f"}}  {edit.MARK}")


def _existing_guard(server: Node) -> Optional[int]:
    for i, node in enumerate(server.children):
        if node.name == "if" and is_guard(node) and any(
                n.name == "break" for n in node.children or ()):
            return i
    return None


def guard_challenges(config: Config, server: Node) -> Optional[int]:
    """When a server-level directive of server answers every request (a
    redirect-only block's return, which the plugin does not edit), put the
    guard before the first server-level rewrite directive that may answer,
    so challenge requests reach their location.  Only where that location
    serves challenge files and nothing else (serves_challenge_files): the
    ``break`` skips every server-level check after it, so it must lead
    nowhere but to those files.  Returns the guard's index in
    server.children, None when none is there."""
    children = server.children
    found = _existing_guard(server)
    if found is not None:
        return found
    if not any(answers_every_request(n) for n in config.expand(children)) or \
            not serves_challenge_files(config, server):
        return None
    index = _first_answer(config, server)
    edit.insert(server, index, guard(), config.file_of(server).newline, server.file)
    config.mark_changed(server)
    return index


def _first_answer(config: Config, server: Node) -> int:
    """Where server's first server-level rewrite directive that may answer
    is, else just after its listen and server_name lines."""
    children = server.children
    index = next((i for i, n in enumerate(children) if _may_answer(config, n)), None)
    if index is None:
        index = 1 + max((i for i, n in enumerate(children)
                         if n.name in ("listen", "server_name")), default=-1)
    return index


def server_level_ifs(config: Config, server: Node) -> List[Node]:
    """The conditional server-level ``if`` blocks that may answer a
    challenge request (named when the self-check fails)."""
    return [n for n in config.expand(server.children)
            if n.name == "if" and not is_guard(n) and _may_answer(config, n)]


def own_file(config: Config) -> Tuple[str, Optional[Node]]:
    """Where our own server blocks go: (path, http block to add an include
    to, or None when an existing http-level include glob covers the path)."""
    https = list(config.http_blocks())
    if not https:
        raise SiteError(f"no http block in {config.main_path}", file=config.main_path)
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


_REDIRECT_CODES = ("301", "302", "303", "307", "308")


def _is_https_redirect(node: Node) -> bool:
    if node.name == "return":
        target = node.args[1] if len(node.args) == 2 and node.args[0] in _REDIRECT_CODES \
            else (node.args[0] if len(node.args) == 1 else "")
        return target.startswith("https://")
    return node.name == "rewrite" and len(node.args) > 1 and node.args[1].startswith("https://")


def matches_every_uri(regex: str) -> bool:
    """Does a rewrite's regex match every request URI (which always starts
    with "/")?  The forms that do: ``^``, ``^/``, ``^(.*)$``, ``^/(.*)$``,
    ``.*``, ``^(.+)$`` and the like; anything that names a path does not."""
    body = regex[1:] if regex.startswith("^") else regex
    rest = body[1:] if body.startswith("/") else body
    if rest == "":
        return True  # "^", "^/", "/": every URI has its first "/"
    if rest.endswith("$") and not rest.endswith("\\$"):
        rest = rest[:-1]
    if rest.startswith("(") and rest.endswith(")") and not rest.startswith("(?"):
        rest = rest[1:-1]
    return rest == ".*" or (rest == ".+" and not body.startswith("/"))


def _redirects_every_uri(node: Node) -> bool:
    """A return or rewrite to https:// that answers whatever the URI."""
    if not _is_https_redirect(node):
        return False
    return node.name == "return" or matches_every_uri(node.args[0])


def plain_request(name: str, port: Optional[int] = None) -> dict:
    """The values nginx gives its variables for every plain-HTTP request
    for name (on port); the variables the redirect rules can decide on."""
    values = {"$host": name.lower(), "$scheme": "http", "$https": ""}
    if port is not None:
        values["$server_port"] = str(port)
    return values


def if_condition(if_node: Node) -> Optional[Tuple[str, Optional[str], Optional[str]]]:
    """(variable, operator, operand) of an ``if``'s condition; operator and
    operand None for a bare variable; None for a file test or anything else."""
    condition = " ".join(if_node.args).strip()
    if condition.startswith("(") and condition.endswith(")"):
        condition = condition[1:-1].strip()
    words = condition.split(None, 2)
    if len(words) == 1 and words[0].startswith("$"):
        return words[0], None, None
    if len(words) != 3 or not words[0].startswith("$"):
        return None
    operand = parser.value_of(words[2]) if words[2][:1] in "\"'" else words[2]
    return words[0], words[1], operand


def condition_holds(condition: Tuple[str, Optional[str], Optional[str]],
                    values: dict) -> bool:
    """Is an ``if`` condition true for every request whose variables have
    values?  False whenever it depends on anything else ($request_uri,
    $uri, $args, a map, a file test): such an ``if`` answers some requests
    only.  nginx compares with = and != byte for byte, matches ~ and !~
    anywhere in the value (``*`` ignores case), and takes a bare variable
    as true unless it is empty or "0"."""
    variable, operator, operand = condition
    if variable not in values:
        return False
    value = values[variable]
    if operator is None:
        return value not in ("", "0")
    if operator in ("=", "!="):
        if "$" in operand:
            return False  # compared with another variable
        return (value == operand) == (operator == "=")
    if operator in ("~", "~*", "!~", "!~*"):
        rx = nginx_regex.compile(operand, operator.endswith("*"))
        return rx is not None and bool(rx.search(value)) == (not operator.startswith("!"))
    return False


def _holds_for(if_node: Node, values: dict) -> bool:
    condition = if_condition(if_node)
    return condition is not None and condition_holds(condition, values)


def _redirect_host(node: Node) -> str:
    """The host part of an https redirect's target: a name or a variable."""
    target = node.args[-1] if node.name == "return" else node.args[1]
    return re.match(r"\$?[^/$:]*", target[len("https://"):]).group(0).lower()


def redirects_to_https(config: Config, server: Node, name: str,
                       to_itself: bool = False, port: Optional[int] = None) -> bool:
    """Does server answer every plain-HTTP request for name (on port) with
    a redirect to https?  Counted: a server-level ``return`` to https:// or
    a ``rewrite`` of every URI to it (includes expanded), on its own or in
    an ``if`` whose condition holds for every such request (condition_holds),
    before any other ``return``; else the same in ``location /`` when every
    other location of the block is for challenges.  A redirect that depends
    on the URI, the arguments or another variable answers some requests
    only, and does not count.  to_itself: only a redirect to the same name
    counts (not one to a canonical name)."""
    values = plain_request(name, port)
    nodes = list(config.expand(server.children))

    def counts(node: Node) -> bool:
        return _redirects_every_uri(node) and (not to_itself or _redirect_host(node) in (
            "$host", "$server_name", "$http_host", name))

    def holds(if_node: Node) -> bool:
        if REDIRECT_FLAG in " ".join(if_node.args):  # the plugin's flag form
            return any(n.name == "if" and n.children is not None and
                       (if_condition(n) or ("",))[0] == "$host" and _holds_for(n, values) and
                       any(c.name == "set" and c.args == [REDIRECT_FLAG, "1"]
                           for c in n.children) for n in nodes)
        return _holds_for(if_node, values)

    def redirected(level: List[Node]) -> Optional[bool]:
        """True: redirected; False: answered otherwise; None: goes on."""
        for node in level:
            if counts(node):
                return True
            if node.name == "if" and node.children is not None and holds(node) \
                    and any(counts(n) for n in config.expand(node.children)):
                return True
            if node.name == "return":
                return False  # nothing after it runs
        return None

    found = redirected(nodes)
    if found is not None:
        return found
    locations = [n for n in nodes if n.name == "location" and n.children is not None]
    root = [n for n in locations if n.args == ["/"]]
    if not root or not all(n is root[0] or _for_challenges(n) for n in locations):
        return False
    return bool(redirected(list(config.expand(root[0].children))))


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


def http2_listen_stays_local(config: Config, addr: str, port: int) -> bool:
    """Whether ``listen addr:port ... http2`` turns HTTP/2 on for no block
    but the new one.  Before nginx 1.25.1 the flag belongs to the listening
    socket, so it is on for every block on that address:port once one block
    sets it; it is safe when no other block listens there, or when one
    already set it."""
    others = [listen for server in config.servers() for listen in server.listens
              if (listen.addr, listen.port) == (addr, port)]
    return not others or any(listen.http2 for listen in others)


# Variables whose value in a redirect's target is the host the request asked for.
_HOST_VARIABLES = ("$host", "$http_host", "$server_name")


def _self_redirect(node: Node, names: Sequence[str]) -> bool:
    """Is node a redirect to https on the host it was asked for (which, in
    a block that also served TLS, would send HTTPS requests to themselves)?"""
    if not _is_https_redirect(node):
        return False
    host = _redirect_host(node)
    return host in _HOST_VARIABLES or host in (n.lower() for n in names)


def _redirects_to_itself(config: Config, server: Node, names: Sequence[str]) -> bool:
    """Does any rewrite directive of server (at any depth, includes
    expanded, conditional or not) redirect to https on the requested host?"""
    pending = list(config.expand(server.children))
    while pending:
        node = pending.pop()
        if _self_redirect(node, names):
            return True
        if node.children is not None:
            pending.extend(config.expand(node.children))
    return False


def _never_over_https(if_node: Node, names: Sequence[str], https_port: int) -> bool:
    """Is this ``if``'s condition false for every HTTPS request for names
    (decided by the host, the scheme, $https or the port alone)?"""
    condition = if_condition(if_node)
    if condition is None:
        return False
    variable, operator, operand = condition
    for name in names:
        values = {"$host": name.lower(), "$scheme": "https", "$https": "on",
                  "$server_port": str(https_port)}
        if variable not in values or (operator is not None and "$" in operand):
            return False
        if operator in ("~", "~*", "!~", "!~*") and \
                nginx_regex.compile(operand, operator.endswith("*")) is None:
            return False
        if condition_holds(condition, values):
            return False
    return True


def _redirect_loop_over_https(config: Config, server: Node, names: Sequence[str],
                              https_port: int) -> Optional[Node]:
    """A redirect of server to https on the requested host (at any depth,
    conditional or not) that an HTTPS copy of it answering names would
    still reach: over HTTPS it sends the request to itself.  Not counted:
    one in an ``if`` that never holds over HTTPS for names (``if ($scheme =
    http)``, ``if ($host = other.example)``), and the plugin's own flag
    form (set only for the names it redirects, which have a block of their
    own or are excepted over TLS)."""
    pending = list(config.expand(server.children))
    while pending:
        node = pending.pop()
        if _self_redirect(node, names):
            return node
        if node.children is None:
            continue
        if node.name == "if" and (REDIRECT_FLAG in " ".join(node.args) or
                                  _never_over_https(node, names, https_port)):
            continue
        pending.extend(config.expand(node.children))
    return None


def _redirects_every_request(node: Node) -> bool:
    """Is node a server-level ``return``, or a ``rewrite`` of every URI to a
    redirect?  A rewrite to a local URI (``rewrite ^ /index.php last;``, a
    front controller) serves content: nginx goes on with the new URI."""
    if node.name == "return":
        return True
    if node.name != "rewrite" or len(node.args) < 2 or not answers_every_request(node):
        return False
    return node.args[1].startswith(("http://", "https://", "$scheme")) or \
        node.args[2:3] in (["redirect"], ["permanent"])


def _only_redirects(config: Config, server: Node) -> bool:
    """Does a server-level return, or rewrite to a redirect, answer every
    request (a redirect-only block, certbot's ``return 404;`` after its ifs)?"""
    return any(_redirects_every_request(n) for n in config.expand(server.children))


def _ends_rewrites(config: Config, node: Node) -> bool:
    """Can node (a server-level directive) end nginx's run of server-level
    rewrite directives so that a location is chosen: ``break``, or a
    ``rewrite`` with ``last``/``break``, here or inside an ``if``?"""
    if node.name == "break" or (node.name == "rewrite" and node.args[2:3] in (["last"],
                                                                              ["break"])):
        return True
    return node.name == "if" and node.children is not None and any(
        _ends_rewrites(config, n) for n in config.expand(node.children))


def _locations_unreachable(config: Config, server: Node) -> bool:
    """Without its challenge guard, does a server-level return (or rewrite
    to a redirect) answer every request before anything could end the
    server's rewrite directives and let nginx choose a location?"""
    for node in config.expand(server.children):
        if is_guard(node):
            continue
        if _redirects_every_request(node):
            return True
        if _ends_rewrites(config, node):
            return False
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


def _host_names(names: Sequence[str]) -> List[str]:
    """The server_names that can match a request's host ("_" and "" are
    the catch-all idiom: names no client sends)."""
    return [n for n in names if n not in ("", "_")]


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
    if _only_redirects(config, node) or _redirects_to_itself(config, node, names):
        return False
    if not all(covers_server_name(covered, n) for n in names):
        return False
    for name in names:
        if name.startswith(("~", "*", ".")) or name.endswith(".*"):
            continue
        try:
            others = answering(config, name, https_port, use_default=False)
        except SiteError:
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
    if redirects_to_https(config, node, name, to_itself=True):
        raise SiteError(
            f"{name} has no server block on port {https_port}, and the one on port "
            f"{http_port} ({where(node)}) only redirects to HTTPS; add an HTTPS server "
            "block for it", node=node)
    if serves_in_place(config, source, https_port, covered or [name]):
        return add_tls_in_place(config, source, http_port, https_port, http2)
    keep = [name] if source.kind == lookup.DEFAULT else \
        [n for n in source.server.names if n == name or covers(covered, n)] or [name]
    loop = _redirect_loop_over_https(config, node, keep, https_port)
    if loop is not None:
        raise SiteError(
            f"{name} has no server block on port {https_port}, and the one on port "
            f"{http_port} ({where(node)}) redirects some requests to https on the same "
            f"host ({where(loop)}): a copy of it for HTTPS would redirect them to "
            "themselves; add an HTTPS server block for it", node=loop)
    lines = _tls_listens(config, source, http_port, https_port, http2)
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
    if _locations_unreachable(config, node):
        # Over HTTPS the redirect answers every request before a location
        # is chosen: the copy needs neither locations (the challenge one
        # included) nor the guard that lets challenges past on plain HTTP.
        for i in reversed(range(len(copy.children))):
            child = copy.children[i]
            if child.name == "location" or is_guard(child):
                edit.remove(copy, i)
    if keep != list(source.server.names):
        names = [i for i, n in enumerate(copy.children) if n.name == "server_name"]
        for i in reversed(names[1:]):
            edit.remove(copy, i)
        if names:
            edit.set_args(copy, names[0], keep)
        else:
            edit.insert(copy, 0, f"server_name {' '.join(keep)};  {edit.MARK}", newline,
                        copy.file)
        _keep_server_name_value(copy, source.server.names, keep)
    edit.mark_block(holder, index + 1)  # every line of the copy is one the plugin added
    config.mark_changed(copy)
    return copy


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


def _serves_tls(config: Config, match: lookup.Match) -> bool:
    server = match.server.ref
    if lookup.takes_tls(match.listen, match.server):
        return not any(n.args == ["on"] for n in config.directives(server,
                                                                   "ssl_reject_handshake"))
    return False


def default_tls_blocks(config: Config, name: str, https_port: int) -> List[Node]:
    """The TLS blocks nginx serves name from on https_port although none
    has it as a server_name: the default_server of an address, else the
    first block on it (a block that rejects handshakes serves nothing)."""
    return [m.server.ref for m in answering(config, name, https_port)
            if m.kind == lookup.DEFAULT and _serves_tls(config, m)]


def _literal(name: str) -> bool:
    return not name.startswith(("~", "*", ".")) and not name.endswith(".*")


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
        for match in answering(config, other, https_port, use_default=False):
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
            raise SiteError(
                f"{name} for the server block at {where(server)} is set in an included file "
                f"({where(inherited[0])}) that other blocks may share; move it into the "
                "server block", node=inherited[0])
        pairs = [i for i, n in enumerate(server.children)
                 if n.name in ("ssl_certificate", "ssl_certificate_key")]
        after = max(pairs or [i for i, n in enumerate(server.children)
                              if n.name in ("listen", "server_name")], default=-1)
        edit.insert(server, after + 1, f"{name} {parser.quote(value)};  {edit.MARK}",
                    newline, server.file)
        config.mark_changed(server)


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
        for match in answering(config, name, port, use_default=False):
            if (port == https_port or lookup.takes_tls(match.listen, match.server)) and \
                    all(match.server.ref is not block for block, _ in found):
                found.append((match.server.ref, port))
    return found


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


def host_condition(name: str) -> str:
    """An ``if`` condition true for requests for name alone."""
    if name.startswith("*."):
        pattern = "^[^.]+" + name[1:].replace(".", "\\.") + "$"
        return f"($host ~* {parser.quote(pattern)})"
    return f"($host = {parser.quote(name)})"


REDIRECT_FLAG = "$nginx_webroot_redirect"


def add_redirect(config: Config, match: lookup.Match, https_port: int, name: str) -> bool:
    """Redirect plain-HTTP requests for name, challenges excepted, to HTTPS;
    False when the block redirects them all to HTTPS already.

    The redirect is for name alone (``if ($host = name)``, as certbot's nginx
    plugin writes it): the block may answer names the certificate does not
    cover (other server_names, or every name for a catch-all).  Challenge
    URIs are excepted only where the block serves them from a challenge
    location (serves_challenge_files), and only from the redirect itself:
    they then meet every other server-level check exactly as before the
    redirect was added (a ``break`` would skip those checks too).  Where
    the block has a guard already (before a return of the user's), the
    redirect goes after it.  nginx's ``if`` takes one condition, so a flag
    carries "this name", "not over TLS" and "not a challenge" to the
    ``return``; a plain block with nothing to except gets certbot's form."""
    server = match.server.ref
    if redirects_to_https(config, server, name, port=match.listen.port):
        return False
    target = "https://$host" + ("" if https_port == 443 else f":{https_port}")
    newline = config.file_of(server).newline
    guarded = _existing_guard(server)
    index = guarded + 1 if guarded is not None else _first_answer(config, server)
    mixed = match.server.ssl_on or any(listen.ssl or listen.port == https_port
                          for listen in match.server.listens)
    except_challenges = guarded is None and serves_challenge_files(config, server)
    if not mixed and not except_challenges:
        edit.insert(server, index,
                    f"if {host_condition(name)} {{  {edit.MARK}\n"
                    f"    return 301 {target}$request_uri;  {edit.MARK}\n"
                    f"}}  {edit.MARK}", newline, server.file)
        config.mark_changed(server)
        return True
    for_name = (f"if {host_condition(name)} {{  {edit.MARK}\n"
                f"    set {REDIRECT_FLAG} 1;  {edit.MARK}\n}}  {edit.MARK}")
    flag = next((i for i, n in enumerate(server.children)
                 if n.name == "set" and n.args == [REDIRECT_FLAG, "0"]), None)
    if flag is not None:  # another name of this block redirects already
        edit.insert(server, flag + 1, for_name, newline, server.file)
        config.mark_changed(server)
        return True
    unset = []
    if mixed:
        unset.append("($https)")
    if except_challenges:
        unset.append(f'($uri ~ "{challenge_uri_pattern()}")')
    lines = [f"set {REDIRECT_FLAG} 0;  {edit.MARK}", for_name]
    lines += [f"if {condition} {{  {edit.MARK}\n    set {REDIRECT_FLAG} 0;  {edit.MARK}\n"
              f"}}  {edit.MARK}" for condition in unset]
    lines.append(f"if ({REDIRECT_FLAG}) {{  {edit.MARK}\n"
                 f"    return 301 {target}$request_uri;  {edit.MARK}\n}}  {edit.MARK}")
    edit.insert(server, index, "\n".join(lines), newline, server.file)
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
