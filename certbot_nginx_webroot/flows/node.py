"""One node of a fleet (issue 23): its configuration read over ssh, its
edits written back over ssh, and the certificates copied to it.

A node's files are not this machine's: the configuration is what the
node's own ``nginx -T`` names, read byte for byte (NodeConfig resolves its
includes among those files, never on this machine's disk); an edit is
written back atomically (RemoteFiles), tested with the node's ``nginx -t``
and put back as it was when that fails or the run undoes it
(NodeTransaction, which keeps the bytes it replaced).  The certificate
and key of a lineage are copied to the node at the paths its configuration
names (the same paths as on this machine: the installer writes them so),
the key 0600 and root's from its first byte (RemoteFiles.write_key).
"""
import fnmatch
import hashlib
import logging
import os
from typing import Callable, Dict, List, Optional

from certbot_nginx_webroot import config as nginx_config
from certbot_nginx_webroot import parser
from certbot_nginx_webroot.controllers import NginxError
from certbot_nginx_webroot.flows.run import Run
from certbot_nginx_webroot.problems import Problem

logger = logging.getLogger(__name__)

_GLOB_CHARS = frozenset("*?[")
KEY_NAME = "privkey.pem"  # certbot's live directory: the key beside fullchain.pem


def glob_matches(pattern: str, path: str) -> bool:
    """Whether path matches an include glob as glob(3) does: component by
    component, a wildcard never crossing a "/"."""
    want, have = pattern.split("/"), path.split("/")
    return len(want) == len(have) and all(fnmatch.fnmatchcase(h, w)
                                          for w, h in zip(want, have))


class NodeConfig(nginx_config.Config):
    """A node's configuration from its files' bytes (path -> bytes, as the
    node names them); includes resolve among those files."""

    @classmethod
    def from_files(cls, main_path: str, data: Dict[str, bytes]) -> "NodeConfig":
        if main_path not in data:
            raise nginx_config.ConfigError(f"nginx -T did not list {main_path}",
                                           file=main_path)
        config = cls(main_path, {})
        config.originals = dict(data)
        for path, raw in data.items():
            config.read_digests[path] = hashlib.sha256(raw).digest()
            config.files[path] = parser.parse(parser.decode(raw), path)
        return config

    def include_paths(self, node: parser.Node) -> List[str]:
        pattern = self.include_pattern(node)
        if _GLOB_CHARS.intersection(pattern):
            return sorted(p for p in self.files if glob_matches(pattern, p))
        if pattern in self.files:
            return [pattern]
        raise nginx_config.ConfigError(f'include "{node.args[0]}": {pattern} is not a file '
                                       f"of this node's configuration ({node.file}:{node.line})",
                                       node=node)


class NodeRun(Run):
    """A Run whose nginx is a node's (controller: controllers/ssh.SshNginx)."""

    @property
    def destination(self) -> str:
        return self.controller.destination

    @property
    def where(self) -> str:  # type: ignore[override]
        return f" on {self.destination}"

    def _load(self) -> nginx_config.Config:
        return NodeConfig.from_files(self.controller.main_conf, self.controller.config_files())

    def send(self, local: str, key: bool = False) -> None:
        """This machine's file local to the node, at the path nginx there
        reads it from (controller.nginx_path); a key 0600 and root's.  A
        node that has the very same content there already is left alone:
        the machine running certbot may be a node itself, where that path
        is certbot's own (a symlink into its archive)."""
        remote = self.controller.nginx_path(local)
        try:
            with open(local, "rb") as f:
                data = f.read()
        except OSError as err:
            raise Problem(f"cannot read {local}: {err.strerror}") from err
        files = self.controller.files
        if files.digest(remote) == hashlib.sha256(data).hexdigest():
            return
        files.make_directory(os.path.dirname(remote))
        if key:
            files.write_key(remote, data)
        else:
            files.write(remote, data)

    def deliver(self, expected: Dict[str, List[str]]) -> None:
        """Each lineage's fullchain and key (certbot's live directory),
        copied only when the node's configuration passes nginx -t as found:
        a node that fails it is left untouched (and named by the caller)."""
        self.controller.test()
        for fullchain in sorted(expected):
            self.send(fullchain)
            self.send(os.path.join(os.path.dirname(fullchain), KEY_NAME), key=True)


class NodeTransaction:
    """The edits of one node's configuration in this run: written over
    ssh, ``nginx -t`` on the node, and the bytes they replaced kept until
    the run keeps them (finalize) or undoes them (restore).  The interface
    of flows/transaction.EditTransaction that the authenticate flow uses."""

    def __init__(self, run: NodeRun, reload: Callable[[], None]) -> None:
        self.run = run
        self.reload = reload
        self._tested_before_edit = False
        self.replaced: Dict[str, Optional[bytes]] = {}  # path -> bytes before this run (None: new)
        self.pending: Optional[str] = None
        self.temporary = False

    def test_before_first_edit(self) -> None:
        if self._tested_before_edit:
            return
        try:
            self.run.controller.test()
        except NginxError as err:
            self.run.forget_config()
            raise Problem(f"the nginx configuration on {self.run.destination} already fails "
                          f"before any change ({err}); nothing was changed; fix it, then "
                          "rerun") from err
        self._tested_before_edit = True

    def save(self, config: NodeConfig, notes: str, finalize: bool = False,
             temporary: bool = False) -> None:
        """config's changed files onto the node, then its nginx -t; every
        file of this run put back if either fails."""
        self.test_before_first_edit()
        files = self.run.controller.files
        changed = sorted(config.changed)
        now = files.read_many([p for p in changed if config.read_digests.get(p)])
        for path in changed:
            before = config.read_digests.get(path)
            if before is not None and hashlib.sha256(now[path]).digest() != before:
                self.run.forget_config()
                raise Problem(f"{path} on {self.run.destination} changed while certbot was "
                              "running; nothing was written, rerun")
        try:
            for path in changed:
                self.replaced.setdefault(path, config.originals.get(path))
                files.write(path, config.render(path))
            self.run.controller.test()
        except (Problem, OSError) as err:
            self.restore()
            raise Problem(f"{err}; the configuration on {self.run.destination} was "
                          "restored") from err
        self.run.forget_config()  # read again from the node when next needed
        if finalize:
            self.finalize()

    def finalize(self) -> None:
        """Keep this run's edits: nothing to put back any more."""
        self.replaced = {}

    def restore(self) -> None:
        """Put back every file this run wrote (remove the ones it made)."""
        files = self.run.controller.files
        for path, data in sorted(self.replaced.items()):
            try:
                if data is None:
                    files.remove(path)
                else:
                    files.write(path, data)
            except Problem as err:
                logger.error("cannot restore %s on %s: %s", path, self.run.destination, err)
        self.replaced = {}
        self.run.forget_config()

    # -- the pending edit of the authenticator --------------------------------

    def begin_pending(self, config: NodeConfig, title: str, temporary: bool) -> None:
        self.save(config, title, temporary=temporary)
        self.pending = title
        self.temporary = temporary
        self.reload()

    def finish_pending(self) -> None:
        """The node serves the challenge files with the edit: no longer
        pending, but still put back if another node refuses (the fleet
        keeps it once every node passed: keep())."""
        if self.pending is not None and not self.temporary:
            self.pending = None

    def keep(self) -> None:
        """Every node passed: this run's edits stay (a dry run's temporary
        one is still undone in cleanup)."""
        if self.pending is None:
            self.finalize()

    def undo_pending(self) -> None:
        """Put back the edits not kept yet and have nginx serve the files
        as they were."""
        if self.pending is None and not self.replaced:
            return
        self.pending = None
        self.temporary = False
        self.restore()
        self.reload()

    def revert_temporary(self) -> None:
        if self.pending is None or not self.temporary:
            return
        self.undo_pending()
