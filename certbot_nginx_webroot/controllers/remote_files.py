"""Files on another machine, over ssh: read one, or replace one atomically.

Only POSIX sh and coreutils run on the node (no agent of ours there).  A
write goes to a temporary file made in the target's own directory (so the
final rename(2) is atomic: a reader, nginx included, sees the old file or
the new one, never half of one), created under umask 077 by mktemp (O_EXCL,
mode 0600, owned by the ssh user): a private key is never readable by
another user on the way.  Its mode and owner are set before the rename:
an existing file's own (a certificate stays as the admin made it), or 0600
and root's for a key.  A failed write removes its temporary file.

Every command goes through the runner handed in (see ssh.OpenSsh), so tests
can run these same scripts without ssh.
"""
from typing import Any, Dict, List

from certbot_nginx_webroot.controllers.openssh import last_line
from certbot_nginx_webroot.problems import Problem

# $1 path, $2 mode or "keep", $3 owner ("uid:gid", or "" for the ssh user),
# $4 the mode of a new file when $2 is "keep"; the content on stdin.
WRITE_SCRIPT = r"""set -eu
path=$1 mode=$2 owner=$3
dir=$(dirname -- "$path") base=$(basename -- "$path")
[ -d "$dir" ] || { echo "no directory $dir" >&2; exit 3; }
[ ! -L "$path" ] || { echo "$path is a symbolic link; not replaced" >&2; exit 3; }
umask 077
tmp=$(mktemp "$dir/.$base.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
if [ "$mode" = keep ]; then
    if kept=$(stat -c '%a %u:%g' -- "$path" 2>/dev/null); then
        mode=${kept%% *} owner=${kept#* }
    else
        mode=$4
    fi
fi
[ -z "$owner" ] || chown -- "$owner" "$tmp"
chmod -- "$mode" "$tmp"
sync -- "$tmp" 2>/dev/null || true
mv -f -- "$tmp" "$path"
trap - EXIT
"""

READ_SCRIPT = r"""[ -e "$1" ] || { echo "no file $1" >&2; exit 3; }
exec cat -- "$1"
"""

# "$@" the paths: for each, its size on a line of its own, then its bytes.
READ_MANY_SCRIPT = r"""for f in "$@"; do
    s=$(wc -c < "$f") || exit 3
    printf '%s\n' "$((s))"
    head -c "$s" -- "$f"
done
"""

# $1 a path: removed if it is a regular file (never through a symlink).
REMOVE_SCRIPT = r"""[ -L "$1" ] || [ ! -f "$1" ] || rm -f -- "$1"
"""

# $1 a directory: made with its parents (mode 0755), as root keeps them.
MKDIR_SCRIPT = r"""umask 022
mkdir -p -- "$1"
"""

# $1 a path: its SHA-256 (of what it points to), or nothing when it is not a file.
DIGEST_SCRIPT = r"""[ -f "$1" ] || exit 0
sha256sum < "$1" | cut -d' ' -f1
"""

KEY_MODE = 0o600
ROOT = "0:0"


class RemoteFileError(Problem):
    """A file on a node could not be read or written (what and where are in
    the message)."""


class RemoteFiles:
    """The files of the machine that destination names, through runner."""

    def __init__(self, runner: Any, destination: str) -> None:
        self.runner = runner
        self.destination = destination

    def read(self, path: str) -> bytes:
        proc = self.runner.run(self.destination, ["sh", "-c", READ_SCRIPT, "sh", path])
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot read {path} on {self.destination}: "
                                  f"{last_line(proc.stderr)}")
        return proc.stdout

    def read_many(self, paths: List[str]) -> Dict[str, bytes]:
        """Each of paths, in one command: path -> its bytes."""
        if not paths:
            return {}
        proc = self.runner.run(self.destination, ["sh", "-c", READ_MANY_SCRIPT, "sh", *paths])
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot read the files of {self.destination}: "
                                  f"{last_line(proc.stderr)}")
        return split_sized(proc.stdout, paths, self.destination)

    def digest(self, path: str) -> str:
        """The hex SHA-256 of path's content, "" when there is no such
        file (the content itself, a key's, never comes back)."""
        proc = self.runner.run(self.destination, ["sh", "-c", DIGEST_SCRIPT, "sh", path])
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot read {path} on {self.destination}: "
                                  f"{last_line(proc.stderr)}")
        return proc.stdout.decode(errors="replace").strip()

    def remove(self, path: str) -> None:
        proc = self.runner.run(self.destination, ["sh", "-c", REMOVE_SCRIPT, "sh", path])
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot remove {path} on {self.destination}: "
                                  f"{last_line(proc.stderr)}")

    def make_directory(self, path: str) -> None:
        proc = self.runner.run(self.destination, ["sh", "-c", MKDIR_SCRIPT, "sh", path])
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot make {path} on {self.destination}: "
                                  f"{last_line(proc.stderr)}")

    def write(self, path: str, data: bytes, new_mode: int = 0o644) -> None:
        """Replace path with data, keeping its mode and owner; a new file
        gets new_mode and the ssh user as owner."""
        self._write(path, data, "keep", "", new_mode)

    def write_key(self, path: str, data: bytes) -> None:
        """Replace path with a private key: mode 0600, owned by root, from
        the first byte written on."""
        self._write(path, data, f"{KEY_MODE:o}", ROOT, KEY_MODE)

    def _write(self, path: str, data: bytes, mode: str, owner: str, new_mode: int) -> None:
        proc = self.runner.run(self.destination,
                               ["sh", "-c", WRITE_SCRIPT, "sh", path, mode, owner,
                                f"{new_mode:o}"], stdin=data)
        if proc.returncode != 0:
            raise RemoteFileError(f"cannot write {path} on {self.destination}: "
                                  f"{last_line(proc.stderr)}")


def split_sized(data: bytes, paths: List[str], destination: str) -> Dict[str, bytes]:
    """READ_MANY_SCRIPT's output: per path, "size\\n" then that many bytes."""
    found: Dict[str, bytes] = {}
    at = 0
    for path in paths:
        end = data.find(b"\n", at)
        size = data[at:end]
        if end < 0 or not size.isdigit() or end + 1 + int(size) > len(data):
            raise RemoteFileError(f"cannot read {path} on {destination}: short answer")
        found[path] = data[end + 1:end + 1 + int(size)]
        at = end + 1 + int(size)
    return found
