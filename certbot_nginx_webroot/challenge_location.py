"""The challenge location: the ``location ^~ /.well-known/acme-challenge/``
the plugin inserts once (or the block's own, adopted), why nginx might keep
the CA out of it, and the guard that lets challenge requests past a
server-level redirect that answers every request.
Every decision reads the block through effective.py, nginx's own view.
"""
import os
import re
from typing import List, Optional, Sequence

from acme import challenges

from certbot_nginx_webroot import edit, effective, parser, rewrites, sites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


CHALLENGE_PREFIX = "/" + challenges.HTTP01.URI_ROOT_PATH + "/"


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


def for_challenges(node: Node) -> bool:
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
    if node is None or not (for_challenges(node) or _for_well_known(node)):
        return None
    handler = effective.serves_files(config, node)
    if handler is not None:
        if not for_challenges(node):
            return None  # e.g. a /.well-known proxy: the plugin's longer prefix wins
        raise sites.SiteError(
            f"the location at {sites.where(node)} answers the challenge path for {host} with "
            f"{handler.name} ({sites.where(handler)}) instead of files from a directory; make it "
            "serve files (root or alias) or remove it", node=node)
    problem = keeps_the_ca_out(config, server, chain)
    if problem:
        raise sites.SiteError(f"the location at {sites.where(node)} serves challenges for {host}, "
                        f"but {problem}", node=node)
    try:
        path = effective.document_path(config, server, chain, uri, prefix, host)
    except effective.Unknown as err:
        raise sites.SiteError(f"the location at {sites.where(node)} serves challenges for "
                              f"{host} from "
                        f"a path the plugin cannot name: {err}", node=node) from err
    if os.path.basename(path.path) != os.path.basename(uri):
        raise sites.SiteError(f"the location at {sites.where(node)} maps {uri} for {host} to "
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
        f"{' '.join([node.name] + [parser.quote(arg) for arg in node.args])} ({sites.where(node)})"
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
    place = f"the location at {sites.where(chain[-1])}" if chain else \
        f"the server block at {sites.where(server)}"
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
            raise sites.SiteError(
                f"the location at {sites.where(node)} is for challenges, but nginx answers them "
                f"from the location at {sites.where(chosen[-1])} first; make it "
                f"\"location ^~ {CHALLENGE_PREFIX}\"", node=node)
    opening = _opening(config, effective.scopes(config, server, []))
    children = server.children
    index = next((i for i, n in enumerate(children) if n.name == "location"), len(children))
    edit.insert(server, index, challenge_location(root, opening),
                config.file_of(server).newline, server.file)
    config.mark_changed(server)
    guard_challenges(config, server)
    return None


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
    if not (for_challenges(node) or _for_well_known(node)) or \
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


def existing_guard(server: Node) -> Optional[int]:
    for i, node in enumerate(server.children):
        if node.name == "if" and rewrites.is_guard(node) and any(
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
    found = existing_guard(server)
    if found is not None:
        return found
    if not any(rewrites.answers(n, challenge_uri()) for n in config.expand(children)) or \
            not serves_challenge_files(config, server):
        return None
    index = first_answer(config, server)
    edit.insert(server, index, guard(), config.file_of(server).newline, server.file)
    config.mark_changed(server)
    return index


def first_answer(config: Config, server: Node) -> int:
    """Where server's first server-level rewrite directive that may answer
    is, else just after its listen and server_name lines."""
    children = server.children
    uri = challenge_uri()
    index = next((i for i, n in enumerate(children) if rewrites.may_answer(config, n, uri)),
                 None)
    if index is None:
        index = 1 + max((i for i, n in enumerate(children)
                         if n.name in ("listen", "server_name")), default=-1)
    return index


def server_level_ifs(config: Config, server: Node) -> List[Node]:
    """The conditional server-level ``if`` blocks that may answer a
    challenge request (named when the self-check fails)."""
    return [n for n in config.expand(server.children)
            if n.name == "if" and not rewrites.is_guard(n)
            and rewrites.may_answer(config, n, challenge_uri())]
