"""The redirect enhancement: does a block already send every plain-HTTP
request for a name to https, adding the redirect when it does not (the
challenge location stays reachable), and the redirects to the requested
host that an HTTPS copy of a block would loop on."""
from typing import List, Optional, Sequence

from certbot_nginx_webroot import challenge_location, edit, lookup, nginx_regex, parser, rewrites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


REDIRECT_FLAG = "$nginx_webroot_redirect"


def host_condition(name: str) -> str:
    """An ``if`` condition true for requests for name alone."""
    if name.startswith("*."):
        pattern = "^[^.]+" + name[1:].replace(".", "\\.") + "$"
        return f"($host ~* {parser.quote(pattern)})"
    return f"($host = {parser.quote(name)})"


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
    guarded = challenge_location.existing_guard(server)
    index = guarded + 1 if guarded is not None else challenge_location.first_answer(config, server)
    mixed = match.server.ssl_on or any(listen.ssl or listen.port == https_port
                          for listen in match.server.listens)
    except_challenges = guarded is None and \
        challenge_location.serves_challenge_files(config, server)
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
        unset.append(f'($uri ~ "{challenge_location.challenge_uri_pattern()}")')
    lines = [f"set {REDIRECT_FLAG} 0;  {edit.MARK}", for_name]
    lines += [f"if {condition} {{  {edit.MARK}\n    set {REDIRECT_FLAG} 0;  {edit.MARK}\n"
              f"}}  {edit.MARK}" for condition in unset]
    lines.append(f"if ({REDIRECT_FLAG}) {{  {edit.MARK}\n"
                 f"    return 301 {target}$request_uri;  {edit.MARK}\n}}  {edit.MARK}")
    edit.insert(server, index, "\n".join(lines), newline, server.file)
    config.mark_changed(server)
    return True


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
    values = rewrites.plain_request(name, port)
    nodes = list(config.expand(server.children))

    def counts(node: Node) -> bool:
        return rewrites.redirects_every_uri(node) and (not to_itself or (
            rewrites.redirect_host(node) in ("$host", "$server_name", "$http_host", name)))

    def holds(if_node: Node) -> bool:
        if REDIRECT_FLAG in " ".join(if_node.args):  # the plugin's flag form
            return any(n.name == "if" and n.children is not None and
                       (rewrites.if_condition(n) or ("",))[0] == "$host" and
                       rewrites.holds_for(n, values) and
                       any(c.name == "set" and c.args == [REDIRECT_FLAG, "1"]
                           for c in n.children) for n in nodes)
        return rewrites.holds_for(if_node, values)

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
    if not root or not all(n is root[0] or challenge_location.for_challenges(n) for n in locations):
        return False
    return bool(redirected(list(config.expand(root[0].children))))


# Variables whose value in a redirect's target is the host the request asked for.
_HOST_VARIABLES = ("$host", "$http_host", "$server_name")


def _self_redirect(node: Node, names: Sequence[str]) -> bool:
    """Is node a redirect to https on the host it was asked for (which, in
    a block that also served TLS, would send HTTPS requests to themselves)?"""
    if not rewrites.is_https_redirect(node):
        return False
    host = rewrites.redirect_host(node)
    return host in _HOST_VARIABLES or host in (n.lower() for n in names)


def redirects_to_itself(config: Config, server: Node, names: Sequence[str]) -> bool:
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
    condition = rewrites.if_condition(if_node)
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
        if rewrites.condition_holds(condition, values):
            return False
    return True


def redirect_loop_over_https(config: Config, server: Node, names: Sequence[str],
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
