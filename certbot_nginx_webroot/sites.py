"""Which server blocks answer a name, as the plugin asks it: the lookup
(lookup.py) over a loaded configuration, with nginx's "conflicting server
name" as a :class:`SiteError` naming the blocks; and the plain host names
the configuration serves.

The rooms that edit server blocks (challenge_location, own_server,
redirects, placement, https_server, certificate_lines) raise
:class:`SiteError`: the configuration cannot be edited safely, with a
message that names the file and line, and the node as a field.  No certbot
here.  Every edit is made in memory and marked; nothing is written until
Config.save.
"""
from typing import List

from certbot_nginx_webroot import lookup
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node
from certbot_nginx_webroot.problems import Problem


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


def plain_names(config: Config) -> set:
    """Every server_name that is a plain host name (no wildcard or regex)."""
    names = set()
    for server in config.servers():
        for name in server.names:
            if name and not name.startswith(("~", "*", ".")) and not name.endswith("*") \
                    and "." in name and "$" not in name:
                names.add(name.lower())
    return names
