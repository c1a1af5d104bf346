"""http-01 challenge files in the webroot: created safely, read back for the
self-check, and removed exactly as created.

certbot runs as root, and what lies under the webroot may be writable by
others (a web application's user, a deploy user).  So nothing below the
webroot is followed if it is a symlink: each directory is opened with
O_NOFOLLOW relative to its parent's descriptor, and each file is created
with O_CREAT|O_EXCL|O_NOFOLLOW, as certbot's webroot plugin creates its
files.  A symlink planted there makes the write fail; nothing is written
through it.  Directories made here get the webroot's owner and group, as
certbot's webroot plugin gives them.

This is the ``local`` challenge store (see stores/__init__.py).
"""
import errno
import os
from typing import Dict, List

from acme import challenges

from certbot_nginx_webroot.stores import ChallengeStoreError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


class LocalDirectory:
    """The challenge files of one run in webroot/subdirectory: the plugin's
    own webroot, or a directory nginx already serves them from (adopted:
    webroot is the admin's path, the root or the directory holding an
    alias's target; subdirectory is what the request path names below it,
    made and checked as for our own)."""

    def __init__(self, webroot: str, subdirectory: str = challenges.HTTP01.URI_ROOT_PATH
                 ) -> None:
        self.webroot = os.path.abspath(webroot)
        self.parts = subdirectory.split("/") if subdirectory else []
        self.directory = os.path.join(self.webroot, *self.parts)
        self._contents: Dict[str, bytes] = {}    # token -> what its file holds
        self._made_roots: List[str] = []         # the webroot and missing parents, made here
        self._made_dirs: List[int] = []          # how many of self.parts were made here

    def put(self, token: str, content: bytes) -> None:
        """Create the file for token holding content (mode 0644)."""
        old_umask = os.umask(0o022)
        try:
            self._make_webroot()
            fds = [os.open(self.webroot, os.O_RDONLY | os.O_DIRECTORY)]
            try:
                owner = os.fstat(fds[0])
                for depth, part in enumerate(self.parts, 1):
                    try:
                        os.mkdir(part, 0o755, dir_fd=fds[-1])
                    except FileExistsError:
                        pass  # there already, or made meanwhile by another run
                    else:
                        self._made_dirs.append(depth)
                        _chown(part, fds[-1], owner)
                    fds.append(_open_dir(part, fds[-1], self._path(depth)))
                _create(token, content, fds[-1])
            finally:
                for fd in fds:
                    os.close(fd)
        except OSError as err:
            raise ChallengeStoreError(f"cannot write the challenge file "
                                     f"{os.path.join(self.directory, token)}: "
                                     f"{err.strerror or err}") from err
        finally:
            os.umask(old_umask)
        self._contents[token] = content

    def read(self, token: str) -> bytes:
        return self._contents[token]

    def remove_all(self) -> None:
        """Remove the files written, then the directories made, if empty.
        A path that became a symlink meanwhile is left alone."""
        try:
            fd = self._open_directory()
        except OSError:
            fd = None
        if fd is not None:
            try:
                for token in self._contents:
                    try:
                        os.unlink(token, dir_fd=fd)
                    except FileNotFoundError:
                        pass
            finally:
                os.close(fd)
        self._contents.clear()
        while self._made_dirs:
            depth = self._made_dirs.pop()
            try:
                parent = self._open_directory(depth - 1)
                try:
                    os.rmdir(self.parts[depth - 1], dir_fd=parent)
                finally:
                    os.close(parent)
            except OSError:  # not empty (another run's files), or gone: leave the rest
                self._made_dirs.clear()
                self._made_roots.clear()
        while self._made_roots:
            try:
                os.rmdir(self._made_roots.pop())
            except OSError:
                self._made_roots.clear()

    def _path(self, depth: int) -> str:
        return os.path.join(self.webroot, *self.parts[:depth])

    def _open_directory(self, depth: int = -1) -> int:
        """A descriptor of the webroot's subdirectory self.parts[:depth]
        (all of them by default), opened without following symlinks."""
        fd = os.open(self.webroot, os.O_RDONLY | os.O_DIRECTORY)
        for n, part in enumerate(self.parts[:depth] if depth >= 0 else self.parts, 1):
            try:
                child = _open_dir(part, fd, self._path(n))
            finally:
                os.close(fd)
            fd = child
        return fd

    def _make_webroot(self) -> None:
        """Make the webroot (and missing parents) if it does not exist.  The
        webroot itself is the admin's chosen path and may be a symlink."""
        missing = []
        probe = self.webroot
        while not os.path.isdir(probe):
            if os.path.lexists(probe):
                raise OSError(errno.ENOTDIR, f"{probe} is not a directory")
            missing.append(probe)
            probe = os.path.dirname(probe)
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                continue  # made meanwhile
            self._made_roots.append(path)


def _open_dir(name: str, parent_fd: int, path: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):  # ELOOP: a symlink, not followed
            kind = "a symlink" if os.path.islink(path) else "not a directory"
            raise OSError(err.errno, f"{path} is {kind}; not writing through it") from err
        raise


def _create(name: str, content: bytes, dir_fd: int) -> None:
    try:
        fd = os.open(name, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    except FileExistsError:
        # Left by a run killed before its cleanup (a pending authorization
        # hands out the same token again): replace the entry itself, never
        # what it may point to.
        os.unlink(name, dir_fd=dir_fd)
        fd = os.open(name, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o644)
        f.write(content)


def _chown(name: str, dir_fd: int, owner: os.stat_result) -> None:
    try:
        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    except PermissionError:
        pass  # not root: the directory is ours, as the webroot is
