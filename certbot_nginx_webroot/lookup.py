"""Which server block answers a host name on a port: nginx's rules as small
pure functions.

nginx keeps one list of server blocks per listening address.  For a request
it takes the list of the address the connection came in on, then picks, in
this order: the exact server_name; the longest wildcard starting with ``*``
(or ``.example.org``); the longest wildcard ending with ``*``; the first
regular expression, in config order; and failing all of these the
``default_server`` of that address, or the first block listening on it.
For a host name we do not know which address the CA will connect to, so
every listening address for the port is looked at and every block that
answers on one of them is returned.  For an IP address (an IP certificate)
the CA connects to that address, so only the list it lands in counts: the
one of ``listen ADDR:port``, else the wildcard of its family (``listen
port`` for IPv4, ``listen [::]:port`` for IPv6).
"""
import ipaddress
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from certbot_nginx_webroot import nginx_regex
from certbot_nginx_webroot.problems import Problem

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# How a block came to answer a name, best first.
EXACT, WILDCARD_HEAD, WILDCARD_TAIL, REGEX, DEFAULT = range(5)


class Listen(NamedTuple):
    addr: str   # "*", "127.0.0.1", "[::]", "[::1]", "localhost", ...
    port: int
    ssl: bool = False
    default: bool = False
    http2: bool = False  # the listen flag (per address:port before nginx 1.25.1)
    proxy_protocol: bool = False  # a PROXY protocol header comes first (HAProxy, a balancer)

    @property
    def ipv6(self) -> bool:
        return self.addr.startswith("[")


class Server(NamedTuple):
    """What the lookup needs to know of a server block."""
    names: Tuple[str, ...]
    listens: Tuple[Listen, ...]
    ref: object = None  # the config node, opaque here
    ssl_on: bool = False  # `ssl on;` (before nginx 1.25.1): every listen is TLS


def is_ssl_on(args: Sequence[str]) -> bool:
    """Do these arguments of an ``ssl`` directive turn it on?  ``ssl on;``
    (nginx before 1.25.1) makes every listen of its block take TLS."""
    return list(args) == ["on"]


def takes_tls(listen: Listen, server: Server) -> bool:
    """Does this listen of server take TLS: its ssl flag, or the block's
    ``ssl on;``?"""
    return listen.ssl or server.ssl_on


class Match(NamedTuple):
    server: Server
    kind: int
    listen: Listen


class AmbiguousName(Problem):
    """Several server blocks claim the same name on the same address (node:
    the last of them, the one nginx ignores with "conflicting server name")."""

    def __init__(self, name: str, port: int, servers: Sequence[Server]) -> None:
        super().__init__(f"{name} on port {port} is claimed by several server blocks",
                         node=servers[-1].ref if servers else None)
        self.servers = list(servers)


DEFAULT_LISTEN = Listen("*", 80)


def parse_listen(args: Sequence[str]) -> Optional[Listen]:
    """A listen directive's arguments as a Listen; None for unix sockets and
    QUIC (UDP) listens, which no TCP client reaches."""
    if not args or args[0].startswith("unix:"):
        return None
    flags = set(args[1:])
    if "quic" in flags:
        return None
    spec = args[0]
    if spec.startswith("["):
        end = spec.find("]")
        addr, rest = spec[:end + 1], spec[end + 1:]
        port = int(rest[1:]) if rest.startswith(":") else 80
    elif ":" in spec:
        addr, _, port_text = spec.rpartition(":")
        port = int(port_text)
    elif spec.isdigit():
        addr, port = "*", int(spec)
    else:
        addr, port = spec, 80
    if addr in ("0.0.0.0", ""):
        addr = "*"
    return Listen(addr.lower(), port, "ssl" in flags,
                  "default_server" in flags or "default" in flags, "http2" in flags,
                  "proxy_protocol" in flags)


def ip_address(host: str) -> Optional[IPAddress]:
    """host as an IP address ("192.0.2.10", "::1" or "[::1]"), None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def request_host(identifier: str) -> str:
    """The Host header a CA sends for an identifier: IPv6 in brackets."""
    ip = ip_address(identifier)
    if ip is not None and ip.version == 6:
        return f"[{ip}]"
    return str(ip) if ip is not None else identifier.lower()


def listen_addr(ip: IPAddress) -> str:
    """ip as Listen.addr spells it."""
    return f"[{ip}]" if ip.version == 6 else str(ip)


def landing_addr(ip: IPAddress, addrs: Sequence[str]) -> Optional[str]:
    """Which of the listening addrs a connection to ip lands on: its own
    address, else the wildcard of its family; None when nginx does not
    listen for it."""
    for addr in addrs:
        if ip_address(addr) == ip:
            return addr
    wildcard = "[::]" if ip.version == 6 else "*"
    return wildcard if wildcard in addrs else None


def wants_proxy_protocol(servers: Sequence[Server], ip: IPAddress, port: int) -> bool:
    """Whether nginx reads a PROXY protocol header first on a connection to
    ip:port.  nginx keeps one set of listen options per address:port and
    ORs proxy_protocol over every listen of it (whichever block has it);
    the connection takes the options of the address it lands on: ip's own
    listen, else the wildcard of its family (landing_addr)."""
    flags: Dict[str, bool] = {}  # addr -> proxy_protocol, of the listens on port
    seen = set()
    for server in servers:
        if id(server.listens) in seen:  # blocks often share one tuple of listens
            continue
        seen.add(id(server.listens))
        for listen in server.listens:
            if listen.port == port:
                flags[listen.addr] = flags.get(listen.addr, False) or listen.proxy_protocol
    landing = landing_addr(ip, list(flags))
    return landing is not None and flags[landing]


def name_rank(host: str, server_name: str) -> Optional[Tuple[int, int]]:
    """How well one server_name matches host: (kind, -length), smaller is
    better; None when it does not match."""
    name = server_name.lower()
    if name.startswith("~"):
        rx = nginx_regex.compile(server_name[1:], caseless=True)  # as nginx compiles them
        return (REGEX, 0) if rx is not None and rx.search(host) else None
    if name.startswith("*."):
        return (WILDCARD_HEAD, -len(name)) if host.endswith(name[1:]) else None
    if name.startswith("."):
        # ".example.org" is "example.org" and "*.example.org" in one.
        if host == name[1:] or host.endswith(name):
            return (WILDCARD_HEAD, -len(name))
        return None
    if name.endswith(".*"):
        return (WILDCARD_TAIL, -len(name)) if host.startswith(name[:-1]) else None
    return (EXACT, 0) if host == name else None


def server_rank(host: str, names: Sequence[str]) -> Optional[Tuple[int, int]]:
    """The best rank of names for host (see name_rank); None: no match.
    host is lower case.  Most names are plain and differ from host, and a
    config can have 100 000 blocks: those are told apart without name_rank."""
    if host in names and host[:1] not in ("~", "*", ".") and not host.endswith(".*"):
        return (EXACT, 0)
    best = None
    for server_name in names:
        first = server_name[:1]
        if first != "~" and first != "*" and first != "." and not server_name.endswith(".*"):
            # (lower() keeps the length of ASCII only)
            if ((len(server_name) == len(host) or not server_name.isascii())
                    and server_name.lower() == host):
                return (EXACT, 0)
            continue
        rank = name_rank(host, server_name)
        if rank is not None and (best is None or rank < best):
            best = rank
    return best


def answering(servers: Sequence[Server], host: str, port: int,
              use_default: bool = True) -> List[Match]:
    """Every server block that answers host on port, one per listening
    address at most, in config order.

    With use_default=False a block that would answer only as the default
    (a catch-all) is left out.

    :raises AmbiguousName: two blocks have the same best name for one address
    """
    host = host.lower().rstrip(".")
    ip = ip_address(host)
    if ip is not None:
        host = request_host(host)
    # One pass over the blocks (there can be 100 000): each block's rank is
    # computed once, and each address keeps only what decides it.  Blocks
    # often share one tuple of listens: what it means for port is worked
    # out once per tuple.
    # Without use_default, an address none of whose blocks has the name
    # decides nothing: its group is made only when one does.  The groups are
    # still looked at in the order their addresses first appear (a block
    # that answers on two addresses is reported with the first).
    groups: Dict[Tuple[str, int], _Group] = {}
    on_port: Dict[int, List[Tuple[Tuple[str, int], Listen]]] = {}
    first_seen: Dict[Tuple[str, int], int] = {}
    lazy = not use_default and ip is None
    for server in servers:
        listens = server.listens
        relevant = on_port.get(id(listens))
        if relevant is None:
            relevant = on_port[id(listens)] = _on_port(listens, port)
            for key, _ in relevant:
                first_seen.setdefault(key, len(first_seen))
        if not relevant:
            continue
        rank = server_rank(host, server.names)
        if rank is None and lazy:
            continue
        for key, listen in relevant:
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(server, listen)
            if rank is not None or listen.default:
                group.add(server, listen, rank)
    if ip is not None:  # the CA connects to that address: one list counts
        landing = landing_addr(ip, [addr for addr, _ in first_seen])
        groups = {key: group for key, group in groups.items() if key[0] == landing}
    found: List[Match] = []
    for key in sorted(groups, key=first_seen.__getitem__):
        match = groups[key].match(host, port, use_default)
        if match is not None and not any(m.server is match.server for m in found):
            found.append(match)
    order = {id(s): i for i, s in enumerate(servers)}
    found.sort(key=lambda m: order[id(m.server)])
    return found


def _on_port(listens: Sequence[Listen], port: int) -> List[Tuple[Tuple[str, int], Listen]]:
    """(address key, listen) of the listens on port, one per address (a
    block listed twice on one address counts once)."""
    found: Dict[Tuple[str, int], Listen] = {}
    for listen in listens:
        if listen.port == port:
            found.setdefault((listen.addr, port), listen)
    return list(found.items())


class _Group:
    """What decides who answers on one listening address: the best named
    block (and any ties), else the default_server, else the first block."""

    __slots__ = ("first", "default", "best", "ties")

    def __init__(self, server: Server, listen: Listen) -> None:
        self.first = (server, listen)
        self.default: Optional[Tuple[Server, Listen]] = None
        self.best: Optional[Tuple[Tuple[int, int], Server, Listen]] = None
        self.ties: List[Server] = []

    def add(self, server: Server, listen: Listen, rank: Optional[Tuple[int, int]]) -> None:
        if listen.default and self.default is None:
            self.default = (server, listen)
        if rank is None:
            return
        if self.best is None or rank < self.best[0]:
            self.best, self.ties = (rank, server, listen), [server]
        elif rank == self.best[0] and rank[0] != REGEX:
            self.ties.append(server)  # nginx: "conflicting server name", first wins

    def match(self, host: str, port: int, use_default: bool) -> Optional[Match]:
        if self.best is not None:
            if len(self.ties) > 1:
                raise AmbiguousName(host, port, self.ties)
            return Match(self.best[1], self.best[0][0], self.best[2])
        if not use_default:
            return None
        server, listen = self.default or self.first
        return Match(server, DEFAULT, listen)
