"""A whole nginx configuration: the main file, its includes, and saving edits.

Includes are resolved as nginx resolves them: a relative path is taken from
the directory of the main file (nginx's conf prefix), globs expand in sorted
order, and a file reached through a symlink keeps the path it was included
by (the symlink is preserved when it is saved).

Paths are resolved as nginx sees them, then opened where this machine
reaches them (``paths``: for nginx in a container, through its volumes).
Files keep this machine's path.  A file nginx loads from no volume (the
official nginx image's nginx.conf) is read as nginx itself printed it
(``paths.image_file``) and cannot be edited.
"""
import fnmatch
import glob
import hashlib
import os
import tempfile
from typing import Dict, Iterator, List, Optional, Set, Tuple

from certbot_nginx_webroot import lookup, parser
from certbot_nginx_webroot.parser import ConfigText, Node
from certbot_nginx_webroot.problems import Problem

_GLOB_CHARS = frozenset("*?[")
_MAX_INCLUDE_DEPTH = 32


# What the lookup reads of every server block.
_LOOKUP_DIRECTIVES = ("server_name", "listen", "ssl")


class ConfigError(Problem):
    """The configuration cannot be read as nginx would read it (node: the
    include directive concerned, when one is)."""


class SamePaths:
    """Paths of an nginx on this machine: nginx's are this machine's."""

    def local_path(self, path: str) -> str:
        return path

    def nginx_path(self, path: str) -> str:
        return path

    def image_file(self, path: str) -> Optional[str]:
        return None

    def image_paths(self) -> List[str]:
        return []


class Config:
    """Parsed files of one nginx configuration, keyed by path (on this
    machine; a file in nginx's image by nginx's path)."""

    def __init__(self, main_path: str, files: Dict[str, ConfigText],
                 paths: object = None, prefix: Optional[str] = None) -> None:
        self.main_path = main_path
        self.paths = paths or SamePaths()
        # nginx's conf prefix, as nginx sees it: relative includes and
        # certificate paths start there.
        self.prefix = os.path.dirname(main_path) if prefix is None else prefix
        self.files = files
        # file in nginx's image -> why it cannot be edited (the mount to add)
        self.image_only: Dict[str, str] = {}
        self.changed: Set[str] = set()
        # path -> digest of the bytes read (None: the file did not exist), so
        # an edit never overwrites a change made on disk since.
        self.read_digests: Dict[str, Optional[bytes]] = {}
        self._servers: Optional[List[lookup.Server]] = None  # cleared by every edit
        # Include directive -> files, so lookups do not glob the disk again;
        # cleared when a file is added.
        self._included: Dict[str, List[str]] = {}

    @classmethod
    def load(cls, main_path: str, paths: object = None) -> "Config":
        """Parse main_path (as nginx sees it) and every file it includes,
        recursively; paths maps nginx's paths to this machine's (default:
        the same).

        :raises parser.ParseError: a file has a syntax error
        :raises ConfigError: a file cannot be read or an include is missing
        """
        nginx_main = os.path.abspath(main_path)
        config = cls(nginx_main, {}, paths, prefix=os.path.dirname(nginx_main))
        config.main_path = config._locate(nginx_main, None)
        config.files[config.main_path] = config._read(config.main_path, None)
        config._load_includes(config.main_path, ())
        return config

    def _locate(self, path: str, where: Optional[Node]) -> str:
        """Where the file nginx opens at path is read: its path on this
        machine, else (in nginx's image, on no volume) path itself."""
        try:
            return self.paths.local_path(path)
        except Problem as err:
            if self.paths.image_file(path) is None:
                origin = f" (included from {where.file}:{where.line})" if where else ""
                raise ConfigError(f"cannot read {path}{origin}: {err}",
                                  file=None if where else path, node=where) from err
            self.image_only[path] = str(err)
            return path

    def _read(self, path: str, where: Optional[Node]) -> ConfigText:
        if path in self.image_only:
            return self._read_image_file(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as err:
            origin = f" (included from {where.file}:{where.line})" if where else ""
            raise ConfigError(f"cannot read {path}{origin}: {err.strerror}",
                              file=None if where else path, node=where) from err
        self.read_digests[path] = hashlib.sha256(data).digest()
        text = parser.decode(data)
        del data  # a large config: one copy at a time
        return parser.parse(text, path)

    def _load_includes(self, path: str, chain: Tuple[Node, ...]) -> None:
        """Load the files path includes, depth first.  chain: the include
        directives that led to path.  A file that includes itself, directly
        or through others, would include itself forever: nginx fails on it."""
        if len(chain) > _MAX_INCLUDE_DEPTH:
            raise ConfigError(f"includes nest more than {_MAX_INCLUDE_DEPTH} deep at "
                              f"{chain[-1].file}:{chain[-1].line}", node=chain[-1])
        for node in self.files[path].includes:
            if node.args:
                for included in self.include_paths(node):
                    stack = [link.file for link in chain] + [path]
                    if included in stack:
                        links = [*chain, node][stack.index(included):]
                        loop = " -> ".join(f"{link.file}:{link.line}" for link in links)
                        raise ConfigError(f"include loop: {loop} -> {included} includes "
                                          "itself again; nginx cannot load this", node=node)
                    if included not in self.files:
                        self.files[included] = self._read(included, node)
                        self._load_includes(included, (*chain, node))

    def _read_image_file(self, path: str) -> ConfigText:
        text = self.paths.image_file(path) or ""
        self.read_digests[path] = hashlib.sha256(text.encode("utf-8", "replace")).digest()
        return parser.parse(text, path)

    def include_pattern(self, node: Node) -> str:
        """An include's argument as an absolute path (or glob), as nginx sees it."""
        return os.path.join(self.prefix, node.args[0])  # join keeps an absolute argument

    def include_paths(self, node: Node) -> List[str]:
        """The files an include directive names, in nginx's order."""
        pattern = self.include_pattern(node)
        found = self._included.get(pattern)
        if found is None:
            if _GLOB_CHARS.intersection(pattern):
                found = [path for path in (self._locate(p, node) for p in self._glob(pattern))
                         if path in self.image_only or os.path.isfile(path)]
            else:
                path = self._locate(pattern, node)
                if path not in self.image_only and not os.path.exists(path):
                    raise ConfigError(f'include "{node.args[0]}": {pattern} does not exist'
                                      f" ({node.file}:{node.line})", node=node)
                found = [path]
            self._included[pattern] = found
        return found

    def _glob(self, pattern: str) -> List[str]:
        """The paths (as nginx sees them) a glob matches, sorted as nginx
        does: the directory above the first wildcard globbed where this
        machine reaches it, else among the files nginx loaded from its image."""
        parts = pattern.split("/")
        fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.intersection(part))
        directory, rest = "/".join(parts[:fixed]) or "/", "/".join(parts[fixed:])
        try:
            local = self.paths.local_path(directory)
        except Problem:
            return sorted(p for p in self.paths.image_paths() if _glob_match(p, pattern))
        if local == directory:
            return sorted(glob.glob(pattern))
        return sorted(os.path.join(directory, os.path.relpath(p, local))
                      for p in glob.glob(os.path.join(glob.escape(local), rest)))

    def expand(self, nodes: List[Node]) -> Iterator[Node]:
        """Nodes of one context, with include directives replaced by the
        top-level nodes of the files they include."""
        for node in nodes:
            if node.name == "include" and node.children is None and node.args:
                for path in self.include_paths(node):
                    conf = self.files.get(path)
                    if conf is None:  # a glob that matches a file created since load
                        conf = self.files[path] = self._read(path, node)
                    yield from self.expand(conf.children)
            else:
                yield node

    def http_blocks(self) -> Iterator[Node]:
        for node in self.expand(self.files[self.main_path].children):
            if node.name == "http" and node.children is not None:
                yield node

    def server_blocks(self) -> List[Node]:
        """Every http server block, in the order nginx reads them."""
        return [node for http in self.http_blocks() for node in self.expand(http.children)
                if node.name == "server" and node.is_block]

    def servers(self) -> List[lookup.Server]:
        """Every http server block with its names and listens, for lookup."""
        if self._servers is None:
            with parser.building_acyclic_data():
                self._servers = self._read_servers()
        return self._servers

    def _read_servers(self) -> List[lookup.Server]:
        found = []
        # Listen lines repeat across sites: read each distinct one once,
        # and share its result (and each distinct set of them).
        listen_of: Dict[str, Optional[lookup.Listen]] = {}
        shared_listens: Dict[Tuple[lookup.Listen, ...], Tuple[lookup.Listen, ...]] = {}
        for node in self.server_blocks():
            names: List[str] = []
            listens = []
            has_listen = ssl_on = False
            if node.unparsed is not None:  # most blocks of a hosting config: not built
                directives = parser.direct_directives(node, _LOOKUP_DIRECTIVES)
            else:
                directives = [(child.name, child.raw, child.args)
                              for child in self.expand(node.children)
                              if child.name in _LOOKUP_DIRECTIVES]
            for name, raw, args in directives:
                if name == "server_name":
                    names += args
                elif name == "listen":
                    has_listen = True
                    try:
                        listen = listen_of[raw]
                    except KeyError:
                        listen = listen_of[raw] = lookup.parse_listen(args)
                    if listen is not None:
                        listens.append(listen)
                elif name == "ssl":
                    ssl_on = ssl_on or lookup.is_ssl_on(args)
            # A block without listen answers *:80 (nginx run as root).
            listened = tuple(listens) if has_listen else (lookup.DEFAULT_LISTEN,)
            found.append(lookup.Server(tuple(names), shared_listens.setdefault(listened, listened),
                                       node, ssl_on))
        return found

    def directives(self, block: Node, name: str) -> List[Node]:
        """The directives called name directly inside block (includes expanded)."""
        return [node for node in self.expand(block.children) if node.name == name]

    def ssl_on(self, block: Node) -> bool:
        """Does block say ``ssl on;`` (includes expanded)?  What
        lookup.Server.ssl_on holds, read from the block as it is now."""
        return any(lookup.is_ssl_on(node.args) for node in self.directives(block, "ssl"))

    def holder(self, target: Node):
        """The block node, or the file, whose children hold target."""
        conf = self.files[target.file]
        stack = [conf]
        while stack:
            owner = stack.pop()
            for node in owner.children:
                if node is target:
                    return owner
                if node.unparsed is None and node.children is not None:
                    stack.append(node)  # (target is not in an unparsed body)
        raise KeyError(f"{target!r} is not in {target.file}")

    def file_of(self, node: Node) -> ConfigText:
        return self.files[node.file]

    def local_path(self, path: str) -> Optional[str]:
        """Where this machine writes the file nginx opens at path; None when
        nginx would open it from its image (on no volume)."""
        try:
            return self.paths.local_path(path)
        except Problem:
            return None

    def add_file(self, path: str, conf: ConfigText) -> None:
        """Register a file the plugin creates; it is written on save."""
        self.files[path] = conf
        self.read_digests.setdefault(path, None)  # must not exist when saved
        self._included.clear()  # a glob may match the new file once it is saved
        self.mark_changed(path)

    def mark_changed(self, node_or_path) -> None:
        """Record an edit (of the file holding a node, or of a path); a
        file in nginx's image cannot be written from here."""
        path = node_or_path if isinstance(node_or_path, str) else node_or_path.file
        if path in self.image_only:
            raise ConfigError(f"cannot edit {path}: {self.image_only[path]}", file=path)
        self.changed.add(path)
        self._servers = None

    def render(self, path: str) -> bytes:
        return parser.encode(parser.dump(self.files[path]))

    def check_unchanged(self) -> None:
        """Raise ConfigError when a file to be written changed on disk since
        it was read (a hand edit made meanwhile), or a file to be created
        exists now: writing would lose that change."""
        for path in sorted(self.changed):
            try:
                with open(path, "rb") as f:
                    now: Optional[bytes] = hashlib.sha256(f.read()).digest()
            except FileNotFoundError:
                now = None
            except OSError as err:
                raise ConfigError(f"cannot read {path}: {err.strerror}", file=path) from err
            if now != self.read_digests.get(path):
                what = "was created" if self.read_digests.get(path) is None else "changed"
                raise ConfigError(f"{path} {what} on disk while certbot was running; "
                                  "not overwriting that change", file=path)

    def save(self) -> List[str]:
        """Write every changed file atomically; returns the paths written.
        Nothing is written when one of them changed on disk since read."""
        self.check_unchanged()
        written = []
        for path in sorted(self.changed):
            data = self.render(path)
            write_atomic(path, data)
            self.read_digests[path] = hashlib.sha256(data).digest()
            parser.unpin_lines(self.files[path])  # the file as read is now the tree
            written.append(path)
        self.changed.clear()
        return written


def _glob_match(path: str, pattern: str) -> bool:
    """glob's rule: each component matches its own (a * stops at a /)."""
    parts, wanted = path.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(
        fnmatch.fnmatchcase(part, want) and (want.startswith(".") or not part.startswith("."))
        for part, want in zip(parts, wanted))


def write_atomic(path: str, data: bytes) -> None:
    """Replace path's content with data in one rename.

    A symlink is followed (the link stays a link); the file keeps its mode
    and, where we may set it, its owner.  A new file gets mode 0644.  A
    file with several hard links (`ln ../sites-available/app default`) is
    rewritten in place instead (rewrite_in_place): a rename would give this
    name a new file and leave the other names on the old one.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        st: Optional[os.stat_result] = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and st.st_nlink > 1:
        rewrite_in_place(target, data)
        return
    fd, tmp = tempfile.mkstemp(prefix=".nginx-webroot-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if st is None:
            os.chmod(tmp, 0o644)
        else:
            os.chmod(tmp, st.st_mode & 0o7777)
            if hasattr(os, "chown"):
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except PermissionError:
                    pass  # not root: the file is ours already
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def rewrite_in_place(path: str, data: bytes) -> None:
    """Replace path's content with data in the same inode, so that every
    hard link to it (and its mode and owner) keeps naming the new content.

    Not atomic as a rename is: a crash between the write and the fsync can
    leave the file part old, part new.  The plugin saves the file as it
    was in certbot's checkpoint before every write (plugin._save_checkpoint
    copies it; certbot's recovery and `certbot rollback` copy it back in
    place, so the links stay), and nginx reads the file only when the
    plugin tests and reloads it, after the write is whole.  Written from
    the start, then cut to length, so a shorter content leaves no old tail."""
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
