"""http-01 challenge files in a node's webroot, over ssh (issue 23: a file
on every node, so a validation request the balancer sends to any node is
answered; no config edit and no reload on any node at renewal).

As the local store (local.py) does, nothing below the webroot is followed
if it is a symlink, and a file is created only where none exists (the
remote shell's noclobber: O_EXCL, which a symlink also fails).  The
remote shell checks each directory for a symlink before it enters it with
``cd -P``; unlike local.py's descriptor walk, a swap between that check
and the ``cd`` is not excluded (only sh runs on the node).  Directories
made for the files are removed again when empty.

Every command goes through the runner handed in (controllers/openssh.OpenSsh,
whose failures are Problems; a store imports no controller).
"""
import re
from typing import Any, Dict, List

from acme import challenges

from certbot_nginx_webroot.problems import Problem
from certbot_nginx_webroot.stores import ChallengeStoreError

# What an ACME token is made of (base64url): it names a file, so nothing
# else (no "/", no "..") is ever put in a path.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")

# $1 webroot, $2 token, then the directories below the webroot; the content
# on stdin.  Prints "made DIR" for each directory it made.
PUT_SCRIPT = r"""set -eu
webroot=$1 token=$2
shift 2
umask 022
cd -P -- "$webroot" || exit 3
for part in "$@"; do
    if [ -L "$part" ]; then
        echo "$PWD/$part is a symbolic link; nothing is written through it" >&2; exit 3
    fi
    if [ ! -d "$part" ]; then mkdir -- "$part"; echo "made $PWD/$part"; fi
    cd -P -- "$part"
done
set -C
cat > "$token"
"""

# $1 the challenge directory, then the tokens: removed if still files there.
REMOVE_SCRIPT = r"""dir=$1
shift
[ ! -L "$dir" ] && cd -P -- "$dir" 2>/dev/null || exit 0
for token in "$@"; do
    [ -f "$token" ] && [ ! -L "$token" ] && rm -f -- "$token"
done
exit 0
"""


def last_line(stderr: bytes) -> str:
    """The remote command's own complaint: its last line of error output."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()
             if line.strip()]
    return lines[-1] if lines else "no error message"


class SshDirectory:
    """The challenge files of one run in webroot/subdirectory on the node
    that destination names (paths as the node names them)."""

    def __init__(self, runner: Any, destination: str, webroot: str,
                 subdirectory: str = challenges.HTTP01.URI_ROOT_PATH) -> None:
        self.runner = runner
        self.destination = destination
        self.webroot = webroot.rstrip("/") or "/"
        self.parts = [part for part in subdirectory.split("/") if part]
        self.directory = "/".join([self.webroot.rstrip("/"), *self.parts])
        self._contents: Dict[str, bytes] = {}
        self._made: List[str] = []  # directories made here, outermost first

    def put(self, token: str, content: bytes) -> None:
        if not _TOKEN.fullmatch(token):
            raise ChallengeStoreError(f"{token!r} is not an ACME token; not written")
        where = f"the challenge file {self.directory}/{token} on {self.destination}"
        try:
            proc = self.runner.run(self.destination,
                                   ["sh", "-c", PUT_SCRIPT, "sh", self.webroot, token,
                                    *self.parts], stdin=content)
        except Problem as err:  # the runner's (ssh itself failed)
            raise ChallengeStoreError(f"cannot write {where}: {err}") from err
        for line in proc.stdout.decode(errors="replace").splitlines():
            if line.startswith("made "):
                self._made.append(line[len("made "):])
        if proc.returncode != 0:
            raise ChallengeStoreError(f"cannot write {where}: {last_line(proc.stderr)}")
        self._contents[token] = content

    def read(self, token: str) -> bytes:
        return self._contents[token]

    def remove_all(self) -> None:
        """Remove the files written, then the directories made, if empty
        (rmdir neither follows a symlink nor removes a directory in use)."""
        try:
            if self._contents:
                self.runner.run(self.destination, ["sh", "-c", REMOVE_SCRIPT, "sh",
                                                   self.directory, *self._contents])
            if self._made:
                self.runner.run(self.destination, ["sh", "-c", "rmdir -- \"$@\" 2>/dev/null; "
                                                   "exit 0", "sh", *reversed(self._made)])
        except Problem:
            pass  # the node went away: its files stay, as a local removal that fails
        self._contents.clear()
        self._made = []
