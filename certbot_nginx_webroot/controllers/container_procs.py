"""The processes in a container, read from its own /proc through the
engine's ``exec``, and nginx's master among them.

The engine knows the container's first process only; nginx's master may be
that process (the official image) or a child of an entrypoint script, so
the master is found as the local controller finds it: by its title and its
executable, read from /proc, here the container's.  The scripts are POSIX
sh with tr and readlink (the official images, Debian and Alpine, have them).

Both scripts first check that the /proc they read is their own pid
namespace's (the shell's pid there is the pid /proc gives it): an engine
run where /proc does not match (seen under a chroot in a PID namespace)
would otherwise show, and let a script signal, processes outside the
container.
"""
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

MASTER_TITLE = "nginx: master process "
# Exit status of the scripts when /proc is not the container's own.
FOREIGN_PROC = 4
# Exit status of SIGNAL_SCRIPT when the process is no longer the master checked.
CHANGED = 3

_OWN_PROC = """\
cd /proc/self 2>/dev/null && [ "$(pwd -P)" = "/proc/$$" ] || exit 4
cd /
"""
# One line per process: P, pid, executable, title (argv joined by spaces),
# /proc/PID/stat; first the nginx on PATH (N), resolved.
PS_SCRIPT = _OWN_PROC + """\
n=$(command -v nginx) && printf 'N\\t%s\\n' "$(readlink -f "$n" 2>/dev/null || echo "$n")"
for d in /proc/[0-9]*; do
  read -r s 2>/dev/null < "$d/stat" || continue
  t=$(tr '\\0' ' ' 2>/dev/null < "$d/cmdline")
  e=$(readlink "$d/exe" 2>/dev/null)
  printf 'P\\t%s\\t%s\\t%s\\t%s\\n' "${d#/proc/}" "$e" "$t" "$s"
done
"""
# SIGHUP to pid $1 only if it is still the process checked: started at
# clock tick $2 (/proc/PID/stat field 22: a reused pid has another) and
# titled as nginx's master.  Checked and signalled in one shell, in the
# container: the engine offers no pidfd.
SIGNAL_SCRIPT = _OWN_PROC + """\
read -r s 2>/dev/null < "/proc/$1/stat" || exit 3
want=$2 pid=$1 sig=$3
s=${s##*) }
set -- $s
[ "${20}" = "$want" ] || exit 3
t=$(tr '\\0' ' ' < "/proc/$pid/cmdline")
case "$t" in "nginx: master process"*) ;; *) exit 3 ;; esac
kill -"$sig" "$pid"
"""


class Proc(NamedTuple):
    pid: int
    ppid: int
    state: str
    start: str      # clock ticks after boot (stat field 22)
    exe: str        # as /proc/PID/exe reads, "(deleted)" dropped
    title: str


def parse_ps(text: str) -> Tuple[Optional[str], Dict[int, Proc]]:
    """(the nginx on the container's PATH, its processes by pid) from the
    output of PS_SCRIPT."""
    nginx = None
    procs: Dict[int, Proc] = {}
    for line in text.splitlines():
        if line.startswith("N\t"):
            nginx = line[2:]
            continue
        fields = line.split("\t", 4)
        if fields[0] != "P" or len(fields) < 5 or not fields[1].isdigit():
            continue
        stat = fields[4]
        after = stat[stat.rfind(")") + 2:].split()
        if len(after) < 20:
            continue
        exe = fields[2]
        exe = exe[:-len(" (deleted)")] if exe.endswith(" (deleted)") else exe
        procs[int(fields[1])] = Proc(int(fields[1]), int(after[1]), after[0], after[19],
                                     exe, fields[3].strip())
    return nginx, procs


def children(procs: Dict[int, Proc], pid: int) -> Dict[int, str]:
    """The live children of pid: pid -> title."""
    return {p.pid: p.title for p in procs.values() if p.ppid == pid and p.state != "Z"}


def find_master(nginx: Optional[str], procs: Dict[int, Proc]) -> Tuple[Optional[Proc], str]:
    """(nginx's master, "") or (None, why there is none): the one process
    titled as a master whose executable is the nginx on the container's
    PATH (as local.master_problem checks it on this machine)."""
    titled = [p for p in procs.values() if p.title.startswith(MASTER_TITLE) and p.state != "Z"]
    if not titled:
        shown = "; ".join(f"{p.pid}: {p.title[:40]}" for p in sorted(procs.values())[:4])
        return None, f"no nginx master process runs in it (its processes: {shown or 'none'})"
    ours = [p for p in titled if nginx is not None and p.exe == nginx]
    if not ours:
        first = titled[0]
        return None, (f"its nginx master (pid {first.pid}) runs {first.exe or 'an unreadable'}"
                      f" executable, not {nginx or 'nginx (none on its PATH)'}")
    if len(ours) > 1:
        pids = ", ".join(str(p.pid) for p in ours)
        return None, f"several nginx masters run in it (pids {pids}: a binary upgrade?)"
    return ours[0], ""


def conf_args(title: str) -> List[str]:
    """The -p and -c options the master was started with (its title is its
    command line), for `nginx -t` to test the configuration it runs."""
    args: List[str] = []
    for option in ("p", "c"):
        found = re.search(rf"(?:^| )-{option} ?(\S+)", title[len(MASTER_TITLE):])
        if found:
            args += [f"-{option}", found.group(1)]
    return args
