"""The container lab: nginx in a real Docker or Podman container.

No image registry is reachable from the machines this runs on, so the image
is built here: a Debian root filesystem (debootstrap, minbase) with Debian's
nginx, laid out like the official nginx image (nginx is the container's main
process with ``daemon off;``, ``/etc/nginx/conf.d/*.conf`` is included, the
default site serves ``/usr/share/nginx/html``), imported with ``docker
import`` / ``podman import``.  The root filesystem is built once and cached
(ROOTFS_CACHE); each engine imports it once per lab run (a few seconds).

Both engines keep everything they write under a temporary directory of the
lab's own (dockerd's data, exec root, pid file and socket; podman's storage),
and the machine's own configuration is never read or edited: podman reads the
project's containers.conf (CONTAINERS_CONF), dockerd a config file of the
lab's.  Containers run with ``--network host``: with the engine started in
the tests' network namespace (podman has no daemon; dockerd is started by the
lab), that is the tests' own loopback, so nginx in a container binds the
lab's ports (lab.HTTP_PORT, ...) as the local NginxLab does.  A container
with published ports (``publish``) has a network of its own instead: a
network the lab's dockerd makes (no iptables: docker-proxy publishes), or
podman's default bridge (CNI, with its iptables rules in the tests' network
namespace; its address leases are kept in /var/lib/cni as podman keeps them).
"""
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import sys
from typing import Dict, List, Optional, Sequence

if __name__ == "__main__":  # as a script: lab imports the package of this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lab  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOTFS_CACHE = os.environ.get("CONTAINER_LAB_CACHE", "/var/cache/certbot-nginx-webroot-lab")
SUITE = "bookworm"
IMAGE = "certbot-nginx-webroot-lab/nginx:bookworm"
# The project's own podman configuration (runc, no ulimits to raise).
CONTAINERS_CONF = os.path.join(HERE, "containers.conf")

# As the official nginx image has them (nginx's docker-nginx repository),
# with Debian's user for the workers.
IMAGE_NGINX_CONF = """\
user  www-data;
worker_processes  1;

error_log  /var/log/nginx/error.log notice;
pid        /var/run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    access_log  /var/log/nginx/access.log;
    sendfile        on;
    keepalive_timeout  65;
    include /etc/nginx/conf.d/*.conf;
}
"""
IMAGE_DEFAULT_CONF = """\
server {
    listen       80;
    server_name  localhost;
    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }
}
"""
# The entrypoint variant: a shell stays PID 1 and nginx is its child, as
# with entrypoint scripts that do not exec.
ENTRYPOINT_SCRIPT = """\
#!/bin/sh
nginx -g 'daemon off;' &
child=$!
trap 'kill -QUIT $child' TERM INT QUIT
wait $child
wait $child
"""
# docker import takes no STOPSIGNAL: the containers are run with
# --stop-signal SIGQUIT, the official image's STOPSIGNAL (a graceful stop).
TINI = "/usr/bin/tini-static"
IMAGE_CHANGES = ['CMD ["nginx", "-g", "daemon off;"]', "EXPOSE 80"]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (its sources)."""
    found = []
    for path in ["/etc/apt/sources.list", *glob.glob("/etc/apt/sources.list.d/*.sources"),
                 *glob.glob("/etc/apt/sources.list.d/*.list")]:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if re.match(r"\s*(URIs:|deb\s)", line):
                found += re.findall(r"[a-z]+://\S+", line)
    for uri in found:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise RuntimeError("no Debian mirror (.../debian) in this machine's apt sources")


def rootfs_tarball() -> str:
    """The image's root filesystem as a tar file: built once (debootstrap,
    ~1 min), then taken from the cache.  A lock makes concurrent suites
    build it once."""
    # Named by what goes into it: a changed layout is a new file, not a stale one.
    layout = hashlib.sha256("\0".join(
        (SUITE, IMAGE_NGINX_CONF, IMAGE_DEFAULT_CONF, ENTRYPOINT_SCRIPT)).encode()).hexdigest()
    path = os.path.join(ROOTFS_CACHE, f"nginx-{SUITE}-{layout[:12]}.tar")
    os.makedirs(ROOTFS_CACHE, exist_ok=True)
    with open(os.path.join(ROOTFS_CACHE, "build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            _build_rootfs(path)
    return path


def _build_rootfs(path: str) -> None:
    build = tempfile.mkdtemp(prefix="rootfs-", dir=ROOTFS_CACHE)
    log = os.path.join(ROOTFS_CACHE, "debootstrap.log")
    try:
        with open(log, "wb") as out:
            proc = subprocess.run(
                ["debootstrap", "--variant=minbase", "--include=nginx", SUITE, build,
                 debian_mirror()], stdout=out, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"debootstrap failed (exit {proc.returncode}); see {log} (in a "
                               "network namespace of its own the mirror is not reachable: "
                               "build first with `python3 tests/containerlab.py`)")
        _lay_out_like_official_image(build)
        subprocess.run(["tar", "-C", build, "-cf", path + ".tmp", "."], check=True)
        os.replace(path + ".tmp", path)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", build], check=False)


def _lay_out_like_official_image(root: str) -> None:
    def write(relpath: str, text: str, mode: int = 0o644) -> None:
        full = os.path.join(root, relpath)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        os.chmod(full, mode)

    write("etc/nginx/nginx.conf", IMAGE_NGINX_CONF)
    for old in glob.glob(os.path.join(root, "etc/nginx/conf.d/*")):
        os.unlink(old)
    write("etc/nginx/conf.d/default.conf", IMAGE_DEFAULT_CONF)
    write("usr/share/nginx/html/index.html", "<h1>Welcome to nginx!</h1>\n")
    write("lab-entrypoint.sh", ENTRYPOINT_SCRIPT, 0o755)
    # The official image logs to the container's output.
    for name, target in (("access.log", "/dev/stdout"), ("error.log", "/dev/stderr")):
        link = os.path.join(root, "var/log/nginx", name)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(target, link)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                 "usr/share/man", "usr/share/locale"):
        for entry in glob.glob(os.path.join(root, junk, "*")):
            if os.path.isfile(entry) or os.path.islink(entry):
                os.unlink(entry)
            else:
                shutil.rmtree(entry, ignore_errors=True)


class Engine:
    """A container engine's CLI with the lab's environment."""

    name = ""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix=f"{self.name}-lab-")
        self.env: Dict[str, str] = dict(os.environ)

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> \
            subprocess.CompletedProcess:
        proc = subprocess.run([self.name, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)} exited {proc.returncode}: "
                               f"{proc.stderr.strip()}")
        return proc

    def start(self) -> "Engine":
        return self

    def stop(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def bridge(self) -> str:
        """A network of the engine's own bridge, for published ports."""
        return "bridge"

    def ensure_image(self) -> None:
        """The lab image, imported from the cached root filesystem."""
        if self.cli("image", "inspect", IMAGE, check=False).returncode == 0:
            return
        args = ["import"]
        for change in IMAGE_CHANGES:
            args += ["--change", change]
        self.cli(*args, rootfs_tarball(), IMAGE, timeout=600)


class Docker(Engine):
    """dockerd started by the lab (its pid kept), with everything it keeps
    under the lab's directory and its own socket."""

    name = "docker"

    def __init__(self) -> None:
        super().__init__()
        self.socket = os.path.join(self.dir, "docker.sock")
        self.env["DOCKER_HOST"] = "unix://" + self.socket
        self.env["DOCKER_CONFIG"] = os.path.join(self.dir, "client")
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "Docker":
        config = os.path.join(self.dir, "daemon.json")
        with open(config, "w") as f:
            json.dump({}, f)  # not the machine's /etc/docker/daemon.json
        self.log = os.path.join(self.dir, "dockerd.log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["dockerd", "--config-file", config, "--data-root", f"{self.dir}/data",
                 "--exec-root", f"{self.dir}/exec", "--pidfile", f"{self.dir}/docker.pid",
                 "-H", "unix://" + self.socket, "--iptables=false", "--ip6tables=false",
                 "--bridge=none", "--log-level=warn"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.cli("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(self.log, errors="replace") as f:
                    raise RuntimeError(f"dockerd did not start:\n{f.read()[-3000:]}")
            time.sleep(0.1)
        return self

    def bridge(self) -> str:
        # This dockerd has no default bridge (--bridge=none): a network of
        # its own, made once; its ports are published by docker-proxy, which
        # needs no iptables.
        if self.cli("network", "inspect", "lab", check=False).returncode != 0:
            self.cli("network", "create", "lab")
        return "lab"

    def stop(self) -> None:
        if self.proc is not None:
            self.cli("rm", "-f", *self.cli("ps", "-aq", check=False).stdout.split(), check=False)
            self.cli("network", "rm", "lab", check=False)  # its bridge interface
            self.proc.terminate()  # dockerd stops its containerd too
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
            self.proc = None
        # Mounts dockerd may have left (overlay layers) before the removal.
        _unmount_under(self.dir)
        super().stop()


class Podman(Engine):
    """podman (no daemon) with the project's containers.conf and storage
    under the lab's directory."""

    name = "podman"

    def __init__(self) -> None:
        super().__init__()
        storage = os.path.join(self.dir, "storage.conf")
        with open(storage, "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{self.dir}/root"\n'
                    f'runroot = "{self.dir}/run"\n')
        self.env["CONTAINERS_CONF"] = CONTAINERS_CONF
        self.env["CONTAINERS_STORAGE_CONF"] = storage

    def stop(self) -> None:
        self.cli("rm", "-af", "-t", "5", check=False)
        _unmount_under(self.dir)
        super().stop()


def _unmount_under(directory: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(directory + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


ENGINES = {"docker": Docker, "podman": Podman}


def missing_tools(engine: str) -> List[str]:
    """What the lab of engine needs that this machine lacks."""
    needed = {"docker": ["docker", "dockerd", "containerd", "runc", "debootstrap", "docker-init"],
              "podman": ["podman", "conmon", "runc", "debootstrap", TINI]}[engine]
    return [tool for tool in needed if shutil.which(tool) is None
            and not os.path.exists("/usr/sbin/" + tool)]


class NginxContainer:
    """An nginx container of the lab image, with --network host and three
    volumes from a temporary directory, as a compose file has them:
    conf.d/ -> /etc/nginx/conf.d, html/ -> /usr/share/nginx/html (the
    webroot) and letsencrypt/ -> /etc/letsencrypt.  ``first``: the
    container's first process, "nginx" itself (the official image), "script"
    (an entrypoint shell script with nginx its child) or "init" (the
    engine's --init, compose's `init: true`: tini, nginx its child)."""

    VOLUMES = (("conf.d", "/etc/nginx/conf.d"), ("html", "/usr/share/nginx/html"),
               ("letsencrypt", "/etc/letsencrypt"))
    FIRST = {"nginx": [], "script": ["--entrypoint", "/lab-entrypoint.sh"],
             # podman's default init (catatonit) is only recommended by
             # Debian's podman: tini, which docker.io brings, serves both.
             "init": ["--init"]}

    def __init__(self, engine: Engine, name: str, first: str = "nginx",
                 publish: Sequence[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.engine = engine
        self.name = name
        self.first = first
        # publish: -p values; the container then has a network of its own
        # (the engine's bridge) instead of the host's.
        self.publish = list(publish)
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix=f"{name}-")
        os.chmod(self.dir, 0o755)  # workers run as www-data
        for sub, _ in self.VOLUMES:
            os.makedirs(os.path.join(self.dir, sub), mode=0o755)
        self.conf_d = os.path.join(self.dir, "conf.d")
        self.webroot = os.path.join(self.dir, "html")
        self.letsencrypt = os.path.join(self.dir, "letsencrypt")

    def host_path(self, relpath: str) -> str:
        return os.path.join(self.dir, relpath)

    def write(self, relpath: str, text: str) -> str:
        """A file under the lab directory, {http}, {https}, {backend} filled
        in as NginxLab.fill does."""
        path = self.host_path(relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        for key, value in (("http", lab.HTTP_PORT), ("https", lab.HTTPS_PORT),
                           ("backend", lab.BACKEND_PORT)):
            text = text.replace("{" + key + "}", str(value))
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def run_args(self) -> List[str]:
        network = self.engine.bridge() if self.publish else "host"
        args = ["run", "-d", "--name", self.name, "--network", network,
                "--stop-signal", "SIGQUIT", *self.extra_args]
        for port in self.publish:
            args += ["-p", port]
        for sub, inside in self.VOLUMES:
            args += ["-v", f"{self.host_path(sub)}:{inside}"]
        args += self.FIRST[self.first]
        if self.first == "init" and self.engine.name == "podman":
            args += ["--init-path", TINI]
        return args + [IMAGE]

    def start(self, wait_port: Optional[int] = lab.HTTP_PORT) -> "NginxContainer":
        if self.publish and not own_network():
            raise RuntimeError("published ports need a bridge: run the tests in a network "
                               "namespace of their own (unshare -n), not on this machine's")
        self.engine.ensure_image()
        self.engine.cli(*self.run_args())
        if wait_port:
            try:
                lab.wait_port("127.0.0.1", wait_port)
            except RuntimeError as err:
                raise RuntimeError(f"{err}; container log:\n{self.logs()}") from err
        return self

    def logs(self) -> str:
        proc = self.engine.cli("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def reloads(self) -> int:
        """SIGHUPs nginx logged (its error log is the container's output)."""
        return len(re.findall(r"\(SIGHUP\) received", self.logs()))

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.engine.cli("exec", self.name, *args, check=check)

    def stop(self) -> None:
        self.engine.cli("stop", "-t", "10", self.name, check=False)

    def remove(self) -> None:
        self.engine.cli("rm", "-f", self.name, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def own_network() -> bool:
    """Whether this process has a network namespace of its own, with only
    loopback (as `unshare -n` makes): the only place the lab may make a
    bridge for published ports."""
    with open("/proc/net/dev") as f:  # this process's namespace, unlike /sys
        names = [line.split(":")[0].strip() for line in f if ":" in line]
    return names == ["lo"]


def unavailable(engine: str) -> Optional[str]:
    """Why the lab of engine cannot run on this machine, None when it can:
    a tool missing, or no cgroup file system (a chroot without /sys, such as
    ../shared/tools/fresh-debian12: dockerd panics there and runc cannot
    make a container)."""
    missing = missing_tools(engine)
    if missing:
        return (f"missing {', '.join(missing)} "
                "(apt-get install docker.io podman runc tini debootstrap)")
    if not glob.glob("/sys/fs/cgroup/*"):
        return "no cgroup file system at /sys/fs/cgroup"
    return None


def engine_fixture():
    """A module-scoped pytest fixture ``engine``, parametrized over Docker
    and Podman: the engine started (and its image imported) once per test
    module, stopped after it.

    The container tests are not part of every run of the suite: README's
    Quickstart runs it in a brand-new Debian where no engine can run.  With
    CONTAINER_LAB=1 (.ci/run sets it) they must run, and a lab that cannot
    fails; otherwise they run where the lab can, and skip elsewhere."""
    import pytest

    @pytest.fixture(scope="module", params=sorted(ENGINES))
    def engine(request):
        why = unavailable(request.param)
        if why:
            message = f"container lab ({request.param}): {why}"
            if os.environ.get("CONTAINER_LAB") == "1":
                pytest.fail(message)
            pytest.skip(message + "; CONTAINER_LAB=1 makes this a failure")
        started = ENGINES[request.param]().start()
        try:
            started.ensure_image()
            yield started
        finally:
            started.stop()

    return engine


if __name__ == "__main__":
    # `python3 tests/containerlab.py`: build (or find) the cached root
    # filesystem, where the network reaches the Debian mirror; the tests run
    # in network namespaces of their own, which do not.
    started = time.monotonic()
    print(f"{rootfs_tarball()} ({time.monotonic() - started:.1f} s)")
