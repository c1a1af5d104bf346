"""What nginx's rewrite module does with a request at the server level,
before a location is chosen: which ``return``/``rewrite`` answers every
request (or every challenge request), which ``if`` conditions hold for
every plain-HTTP request for a name, which redirects go to https, and what
ends the run of rewrite directives.  Pure rules over parsed nodes; the
edits that rely on them are in challenge_location, redirects and
https_server.
"""
import re
from typing import Optional, Tuple

from certbot_nginx_webroot import nginx_regex, parser
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


_REDIRECT_CODES = ("301", "302", "303", "307", "308")


def is_https_redirect(node: Node) -> bool:
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


def answers(node: Node, uri: Optional[str] = None) -> bool:
    """Does this server-level directive answer (or rewrite away) every
    request for uri before a location is chosen, whatever else the request
    holds; with uri None, every request?  nginx's rule: a ``return`` always
    answers; a ``rewrite`` when its regex matches the URI (for one uri: the
    regex is run, and one Python cannot read may match; for every URI: one
    of the forms matches_every_uri knows).  An ``if`` is conditional, so it
    never does."""
    if node.name == "return":
        return True
    if node.name != "rewrite" or not node.args:
        return False
    if uri is None:
        return matches_every_uri(node.args[0])
    rx = nginx_regex.compile(node.args[0], False)
    return rx is None or bool(rx.search(uri))


def answers_every_request(node: Node) -> bool:
    """Does this server-level directive answer (or rewrite away) every
    request (see answers)?"""
    return answers(node)


def redirects_every_uri(node: Node) -> bool:
    """A return or rewrite to https:// that answers whatever the URI."""
    if not is_https_redirect(node):
        return False
    return node.name == "return" or matches_every_uri(node.args[0])


def _redirects_every_request(node: Node) -> bool:
    """Is node a server-level ``return``, or a ``rewrite`` of every URI to a
    redirect?  A rewrite to a local URI (``rewrite ^ /index.php last;``, a
    front controller) serves content: nginx goes on with the new URI."""
    if node.name == "return":
        return True
    if node.name != "rewrite" or len(node.args) < 2 or not answers(node):
        return False
    return node.args[1].startswith(("http://", "https://", "$scheme")) or \
        node.args[2:3] in (["redirect"], ["permanent"])


def redirect_host(node: Node) -> str:
    """The host part of an https redirect's target: a name or a variable."""
    target = node.args[-1] if node.name == "return" else node.args[1]
    return re.match(r"\$?[^/$:]*", target[len("https://"):]).group(0).lower()


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


def holds_for(if_node: Node, values: dict) -> bool:
    condition = if_condition(if_node)
    return condition is not None and condition_holds(condition, values)


def is_guard(node: Node) -> bool:
    """An ``if`` written to let challenge requests past server-level
    redirects (the plugin's, or certbot's own form with $request_uri)."""
    return node.name == "if" and "acme-challenge" in " ".join(node.args)


def may_answer(config: Config, node: Node, uri: str) -> bool:
    """Is node (or, for an include, a directive in it) a server-level
    rewrite directive that may answer the request for uri (a challenge
    request)?  Any ``if`` with a return or rewrite in it may, but a guard."""
    if node.name == "include":
        return any(may_answer(config, n, uri) for n in config.expand([node]))
    if node.name == "if" and node.children is not None:
        return not is_guard(node) and any(n.name in ("return", "rewrite")
                                          for n in config.expand(node.children))
    return answers(node, uri)


def _ends_rewrites(config: Config, node: Node) -> bool:
    """Can node (a server-level directive) end nginx's run of server-level
    rewrite directives so that a location is chosen: ``break``, or a
    ``rewrite`` with ``last``/``break``, here or inside an ``if``?"""
    if node.name == "break" or (node.name == "rewrite" and node.args[2:3] in (["last"],
                                                                              ["break"])):
        return True
    return node.name == "if" and node.children is not None and any(
        _ends_rewrites(config, n) for n in config.expand(node.children))


def only_redirects(config: Config, server: Node) -> bool:
    """Does a server-level return, or rewrite to a redirect, answer every
    request (a redirect-only block, certbot's ``return 404;`` after its ifs)?"""
    return any(_redirects_every_request(n) for n in config.expand(server.children))


def locations_unreachable(config: Config, server: Node) -> bool:
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
