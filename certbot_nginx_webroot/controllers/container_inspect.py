"""What the engine's ``container inspect`` says, read as the controller needs
it: is this the container named, does it run, which host path a path in the
container is (and back), where a port it publishes is reached.  Docker and
Podman write the same fields for all of these (Name, State, Mounts,
HostConfig.NetworkMode, NetworkSettings.Ports).  Pure functions of the
inspect data."""
import os
import posixpath
from typing import Any, Dict, List, Optional, Tuple

Info = Dict[str, Any]

# A lineage's live/ files are links into ../../archive/: only a mount of
# certbot's whole configuration directory keeps them working in the container.
_LINEAGE_DIRS = ("live", "archive")


def name_of(info: Info) -> str:
    """The container's name (docker writes it with a leading slash)."""
    return str(info.get("Name") or "").lstrip("/")


def state_problem(info: Info) -> Optional[str]:
    """Why the container cannot run a command now (one clause), None when
    it runs."""
    state = info.get("State") or {}
    if state.get("Paused"):
        return "is paused (unpause it)"
    if not state.get("Running"):
        status = state.get("Status") or "not running"
        return f"is {status}, not running (start it: docker start / docker compose up -d)"
    return None


def _mounts(info: Info) -> List[Info]:
    return [m for m in info.get("Mounts") or [] if m.get("Destination")]


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def host_path(info: Info, path: str) -> Optional[str]:
    """The host path of path in the container: through the mount with the
    longest destination holding it (a nested mount hides what is beneath
    it); None when no mount holds it, or the one that does has no host
    side (tmpfs)."""
    path = posixpath.normpath(path)
    holding = [m for m in _mounts(info) if _under(path, posixpath.normpath(m["Destination"]))]
    if not holding:
        return None
    mount = max(holding, key=lambda m: len(posixpath.normpath(m["Destination"])))
    if mount.get("Type") not in ("bind", "volume") or not mount.get("Source"):
        return None
    rest = posixpath.relpath(path, posixpath.normpath(mount["Destination"]))
    return posixpath.normpath(posixpath.join(mount["Source"], rest))


def host_file(info: Info, path: str, readlink=os.readlink) -> Optional[str]:
    """The host path of the file nginx in the container opens at path:
    symbolic links followed as the kernel follows them in the container
    (an absolute target is a path in the container, a relative one is
    relative to the link's directory there), each step read through the
    mounts (a directory in the image, above the volumes, taken for one);
    None when the file is on no mount (inside the image), or links loop.  Not followed so, an absolute link on a volume (Debian's
    sites-enabled/x -> /etc/nginx/sites-available/x) would name this
    machine's own file."""
    parts = [p for p in reversed(path.split("/")) if p]
    current, hops = "/", 0
    while parts:
        name = parts.pop()
        if name == ".":
            continue
        if name == "..":
            current = posixpath.dirname(current)
            continue
        candidate = posixpath.join(current, name)
        host = host_path(info, candidate)
        try:
            if host is None:  # in the image (/etc above a volume): a directory
                raise OSError("not readable from here")
            target = readlink(host)
        except OSError:  # not a link, or not there yet (a file to create)
            current = candidate
            continue
        hops += 1
        if hops > 40:  # the kernel's limit too (ELOOP)
            return None
        if target.startswith("/"):
            current = "/"
        parts.extend(p for p in reversed(target.split("/")) if p)
    return host_path(info, current)


def container_path(info: Info, path: str, resolve=os.path.realpath,
                   readlink=os.readlink) -> Optional[str]:
    """The path in the container of path on the host, as nginx's
    configuration should name it: path itself mapped through the mount
    whose source holds it, its symbolic links kept (a lineage's live/
    link, so a renewal needs no edit).  None unless nginx, opening that
    path in the container, reaches this very file: no mount holds it, a
    nested mount hides it there, or what it links to (live/ ->
    ../../archive/) is not in the container too."""
    path = posixpath.normpath(path)
    best: Optional[Tuple[int, str]] = None
    for mount in _mounts(info):
        if mount.get("Type") not in ("bind", "volume") or not mount.get("Source"):
            continue
        # as written, or with its links resolved as the engine resolved them
        for source in {posixpath.normpath(mount["Source"]), resolve(mount["Source"])}:
            if _under(path, source) and (best is None or len(source) > best[0]):
                rest = posixpath.relpath(path, source)
                best = (len(source),
                        posixpath.normpath(posixpath.join(mount["Destination"], rest)))
    if best is None:
        return None
    reached = host_file(info, best[1], readlink)
    if reached is None or resolve(reached) != resolve(path):
        return None
    return best[1]


def mount_to_add(path: str, is_dir: bool) -> str:
    """The directory a mount should bring in for path (the same path on both
    sides, as the compose recipes have /etc/letsencrypt): certbot's whole
    configuration directory for a lineage's files, else path itself when
    it is a directory, else the directory holding it."""
    parts = path.rstrip("/").split("/")
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] in _LINEAGE_DIRS and i + 1 < len(parts):
            return "/".join(parts[:i]) or "/"
    if is_dir:
        return path.rstrip("/") or "/"
    return posixpath.dirname(path.rstrip("/")) or "/"


def mount_advice(directory: str) -> str:
    """The mount to add, as the engine's command line and compose write it."""
    return f"-v {directory}:{directory} (compose: volumes: - {directory}:{directory})"


def reach(info: Info, addr: str, port: int) -> Optional[Tuple[str, int]]:
    """Where a client on the host reaches nginx's listen addr:port in the
    container: the same place on the host network; else the host side of
    the port the container publishes (IPv4 first); None when it publishes
    none for that port."""
    if (info.get("HostConfig") or {}).get("NetworkMode") == "host":
        return addr, port
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    bindings = [b for b in ports.get(f"{port}/tcp") or [] if b.get("HostPort")]
    if not bindings:
        return None
    binding = min(bindings, key=lambda b: ":" in (b.get("HostIp") or ""))
    host_ip = binding.get("HostIp") or "0.0.0.0"
    if host_ip == "0.0.0.0":
        host_ip = "127.0.0.1"
    elif host_ip == "::":
        host_ip = "[::1]"
    elif ":" in host_ip:
        host_ip = f"[{host_ip}]"
    return host_ip, int(binding["HostPort"])
