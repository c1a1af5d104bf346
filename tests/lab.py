"""The end-to-end lab: a real ACME CA (pebble, with pebble-challtestsrv as its
DNS answering 127.0.0.1 for every name) and a real nginx started from a
temporary prefix on loopback ports.  Used by the end-to-end tests, the
benchmarks and demo.sh; nothing here is faked.
"""
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional

HTTP_PORT = 5002      # pebble validates http-01 on its httpPort
HTTPS_PORT = 5443
BACKEND_PORT = 5080   # stands in for the app behind a reverse proxy
ACME_PORT = 14000
DNS_PORT = 8053

NGINX_CONF = """\
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log notice;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{backend};
        return 200 "backend $host\\n";
    }}
    include sites/*.conf;
}}
"""


def missing_tools() -> List[str]:
    missing = [t for t in ("pebble", "pebble-challtestsrv", "openssl")
               if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]
    return missing + ([] if os.path.exists(nginx_binary()) else ["nginx"])


def nginx_binary() -> str:
    """The nginx the tests run: $NGINX_BINARY (CI sets it to run the suite
    against a newer nginx too), else the installed one."""
    return (os.environ.get("NGINX_BINARY") or shutil.which("nginx")
            or "/usr/sbin/nginx")


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


# The lab CA and pebble's HTTPS certificate, with the extensions that strict
# X.509 verification (OpenSSL's X509_V_FLAG_X509_STRICT, RFC 5280) demands:
# Python 3.13 turns it on in ssl.create_default_context() and urllib3 2 in its
# own contexts, so certbot on Debian 13 refuses a CA without keyUsage.  All are
# written out rather than left to openssl's defaults, which differ between
# OpenSSL versions (and its configuration file).
LAB_TLS_OPENSSL_CNF = """\
[req]
distinguished_name = subject
[subject]
[lab_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[lab_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1
"""


def make_tls_cert(directory: str) -> Dict[str, str]:
    """A throwaway CA and a localhost certificate it signed (for pebble's
    ACME endpoint, which speaks only HTTPS), both acceptable to strict
    verification (LAB_TLS_OPENSSL_CNF)."""
    paths = {k: os.path.join(directory, k + ".pem") for k in ("ca", "ca-key", "cert", "key")}
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    cnf = os.path.join(directory, "lab-tls.cnf")
    with open(cnf, "w") as f:
        f.write(LAB_TLS_OPENSSL_CNF)
    run("openssl", "req", "-x509", "-config", cnf, "-extensions", "lab_ca", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=lab test CA",
        "-keyout", paths["ca-key"], "-out", paths["ca"])
    csr = os.path.join(directory, "cert.csr")
    run("openssl", "req", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-subj", "/CN=localhost", "-keyout", paths["key"], "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca-key"],
        "-CAcreateserial", "-days", "2", "-extfile", cnf, "-extensions", "lab_server",
        "-out", paths["cert"])
    return paths


class AcmeCA:
    """pebble + pebble-challtestsrv on loopback."""

    def __init__(self, directory: Optional[str] = None) -> None:
        self.owned = directory is None  # ours to delete on stop
        self.directory = directory or tempfile.mkdtemp(prefix="acme-lab-")
        self.procs: List[subprocess.Popen] = []
        self.url = f"https://127.0.0.1:{ACME_PORT}/dir"
        self.ca_bundle = ""

    def start(self) -> "AcmeCA":
        os.makedirs(self.directory, exist_ok=True)
        tls = make_tls_cert(self.directory)
        self.ca_bundle = tls["ca"]
        config = os.path.join(self.directory, "pebble.json")
        with open(config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.1:{ACME_PORT}",
                "managementListenAddress": "127.0.0.1:15000",
                "certificate": tls["cert"], "privateKey": tls["key"],
                "httpPort": HTTP_PORT, "tlsPort": 5001,
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        log = open(os.path.join(self.directory, "challtestsrv.log"), "wb")
        self.procs.append(subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{DNS_PORT}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", "127.0.0.1:8055"],
            stdout=log, stderr=subprocess.STDOUT))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0",
                   PEBBLE_AUTHZREUSE="0")  # every order really validates
        log = open(os.path.join(self.directory, "pebble.log"), "wb")
        self.procs.append(subprocess.Popen(
            ["pebble", "-config", config, "-dnsserver", f"127.0.0.1:{DNS_PORT}"],
            stdout=log, stderr=subprocess.STDOUT, env=env))
        wait_port("127.0.0.1", ACME_PORT)
        wait_port("127.0.0.1", 8055)
        return self

    def resolve(self, name: str, address: Optional[str]) -> None:
        """Make the CA's DNS answer address for name (None: the default,
        127.0.0.1)."""
        path, body = (("/add-a", {"host": name + ".", "addresses": [address]}) if address
                      else ("/clear-a", {"host": name + "."}))
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:8055" + path, data=json.dumps(body).encode()), timeout=5).close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs = []
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)


class NginxLab:
    """A real nginx from a temporary prefix; sites go in sites/*.conf."""

    def __init__(self, prefix: Optional[str] = None) -> None:
        self.owned = prefix is None  # ours to delete on stop
        self.prefix = prefix or tempfile.mkdtemp(prefix="nginx-lab-")
        # As root, workers run as nobody: a 0700 mkdtemp dir makes every file 403.
        os.chmod(self.prefix, 0o755)
        for sub in ("sites", "logs", "tmp", "webroot", "www"):
            os.makedirs(os.path.join(self.prefix, sub), exist_ok=True)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        self.webroot = os.path.join(self.prefix, "webroot")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(prefix=self.prefix, backend=BACKEND_PORT))
        self.proc: Optional[subprocess.Popen] = None

    def write(self, relpath: str, text: str) -> str:
        path = os.path.join(self.prefix, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(self.fill(text))
        return path

    def fill(self, text: str) -> str:
        """text with {prefix}, {http}, {https} and {backend} filled in (nginx's
        own braces need no escaping)."""
        for key, value in (("prefix", self.prefix), ("http", HTTP_PORT),
                           ("https", HTTPS_PORT), ("backend", BACKEND_PORT)):
            text = text.replace("{" + key + "}", str(value))
        return text

    def start(self) -> "NginxLab":
        subprocess.run([nginx_binary(), "-p", self.prefix, "-c", self.conf, "-t", "-q"],
                       check=True)
        subprocess.run([nginx_binary(), "-p", self.prefix, "-c", self.conf], check=True)
        wait_port("127.0.0.1", BACKEND_PORT)
        self.wait_workers()
        return self

    def wait_workers(self, timeout: float = 20.0) -> None:
        """Wait until the master has written its pid file and forked its
        worker: it listens before either, and a reload measured from a
        master with no worker yet would take its first worker for a new one
        (seen as a flaky reload test on a busy machine)."""
        from certbot_nginx_webroot.controllers import local as nginxctl
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid = self.master_pid()
            except (OSError, ValueError):  # the daemon writes it after it listens
                time.sleep(0.02)
                continue
            # "in", not startswith: run through a loader (.ci/newer-nginx),
            # the title follows the loader's own arguments.
            if any("nginx: worker process" in title
                   for title in nginxctl.children_of(pid).values()):
                return
            time.sleep(0.02)
        raise RuntimeError(f"nginx master {self.master_pid()} has no worker after {timeout} s")

    def master_pid(self) -> int:
        with open(os.path.join(self.prefix, "nginx.pid")) as f:
            return int(f.read())

    def stop(self, remove: bool = True) -> None:
        """Stop nginx; remove the prefix if this lab made it."""
        self._quit()
        if remove and self.owned:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def _quit(self) -> None:
        try:
            pid = self.master_pid()
        except (OSError, ValueError):
            return
        # Tests write hostile pid files (-1, 1, another process): signal only
        # a master of this nginx binary.
        from certbot_nginx_webroot.controllers import local as nginxctl
        if pid <= 1 or nginxctl.master_problem(pid, nginx_binary()):
            return
        try:
            os.kill(pid, signal.SIGQUIT)
        except OSError:
            return
        # A graceful stop waits for the workers' open requests; on a machine
        # running several suites at once that can take seconds.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        # A killed master leaves its pid file: remove it, as a stop that
        # finished would, so a test can still tell whether anything started
        # nginx again.
        try:
            os.unlink(os.path.join(self.prefix, "nginx.pid"))
        except FileNotFoundError:
            pass

    def reloads(self) -> int:
        """SIGHUPs the master has received (logged at notice level)."""
        try:
            with open(self.error_log, errors="replace") as f:
                return len(re.findall(r"\(SIGHUP\) received", f.read()))
        except FileNotFoundError:
            return 0

    def snapshot(self) -> Dict[str, bytes]:
        """Every config file under the prefix, by path."""
        found = {}
        for path in [self.conf] + sorted(
                os.path.join(d, f) for d, _, fs in os.walk(os.path.join(self.prefix, "sites"))
                for f in fs):
            with open(path, "rb") as f:
                found[path] = f.read()
        return found


def served_cert_der(name: str, port: int = HTTPS_PORT, host: str = "127.0.0.1") -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return tls.getpeercert(binary_form=True)


def negotiated_protocol(name: str, port: int = HTTPS_PORT, host: str = "127.0.0.1") -> str:
    """The protocol nginx picks by ALPN when offered h2 and http/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((host, port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            return tls.selected_alpn_protocol() or "none"


def leaf_der(pem_path: str) -> bytes:
    with open(pem_path) as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0))


def https_response(name: str, path: str = "/", port: int = HTTPS_PORT,
                   headers: Optional[Dict[str, str]] = None) -> tuple:
    """(status, body) of a GET over TLS with SNI and Host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            request = f"GET {path} HTTP/1.0\r\nHost: {name}\r\n"
            for key, value in (headers or {}).items():
                request += f"{key}: {value}\r\n"
            tls.sendall((request + "\r\n").encode())
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def http_get(name: str, path: str = "/", port: int = HTTP_PORT,
             headers: Optional[Dict[str, str]] = None) -> tuple:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers=dict(headers or {}, Host=name))
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# The certbot of the interpreter running the tests, not whichever `certbot`
# is first on PATH: CI runs the suite once per certbot version.
PLUGIN_PATH = os.path.dirname(os.path.dirname(os.path.abspath(
    importlib.util.find_spec("certbot_nginx_webroot").origin)))
CERTBOT_COMMAND = [sys.executable, "-c",
                   "import sys; from certbot.main import main; sys.exit(main())"]


class Certbot:
    """Real certbot, state kept under one directory."""

    def __init__(self, directory: str, acme: AcmeCA, lab: NginxLab,
                 command: Optional[List[str]] = None) -> None:
        self.directory = directory
        self.acme = acme
        self.lab = lab
        self.command = command or CERTBOT_COMMAND

    def base_args(self, ports: bool = True) -> List[str]:
        d = self.directory
        args = ["--non-interactive", "--agree-tos", "--register-unsafely-without-email",
                "--server", self.acme.url, "--config-dir", f"{d}/config",
                "--work-dir", f"{d}/work", "--logs-dir", f"{d}/logs"]
        if ports:
            args += ["--http-01-port", str(HTTP_PORT), "--https-port", str(HTTPS_PORT)]
        return args

    def installer_args(self) -> List[str]:
        return ["--nginx-webroot-server-root", self.lab.prefix,
                "--nginx-webroot-ctl", nginx_binary()]

    def plugin_args(self) -> List[str]:
        return self.installer_args() + ["--nginx-webroot-path", self.lab.webroot]

    def start(self, *args: str, cwd: Optional[str] = None,
              env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """certbot args, running; its output is text on stdout and stderr.
        env replaces the environment (as cron's would)."""
        env = dict(os.environ if env is None else env, REQUESTS_CA_BUNDLE=self.acme.ca_bundle)
        # Installed packages have byte code; let an editable checkout have it too.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # The plugin these tests import, whatever the cwd (python -c puts the
        # cwd first on sys.path, which is the checkout only when run from it).
        env["PYTHONPATH"] = PLUGIN_PATH
        # `renew` runs as a timer does: with what the renewal configuration
        # stored (certbot stores the http-01 port, not the HTTPS port).
        return subprocess.Popen(
            self.command + list(args) + self.base_args(ports=args[0] != "renew"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)

    def run(self, *args: str, check: bool = True, cwd: Optional[str] = None,
            env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        running = self.start(*args, cwd=cwd, env=env)
        stdout, stderr = running.communicate()
        proc = subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"certbot {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def live(self, name: str, what: str = "fullchain.pem") -> str:
        return os.path.join(self.directory, "config", "live", name, what)


TLS_PROTOCOLS = ("tls1", "tls1_1", "tls1_2", "tls1_3")  # openssl s_client's flags
NGINX_NAMES = {"tls1": "TLSv1", "tls1_1": "TLSv1.1", "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}


def tls_handshake(name: str, protocol: str, port: int = HTTPS_PORT,
                  host: str = "127.0.0.1") -> str:
    """What nginx answers a client offering only protocol (a TLS_PROTOCOLS
    flag) with SNI name: the version negotiated, or "refused" when nginx
    answered the ClientHello with an alert.  The client runs at OpenSSL
    security level 0, so it refuses nothing itself (Python's ssl module on
    OpenSSL 3 would not even offer TLS 1.0)."""
    proc = subprocess.run(
        ["openssl", "s_client", "-brief", "-connect", f"{host}:{port}", "-servername", name,
         "-" + protocol, "-cipher", "DEFAULT@SECLEVEL=0"],
        input="", capture_output=True, text=True, timeout=15)
    found = re.search(r"Protocol version: (\S+)", proc.stdout + proc.stderr)
    if found:
        return found.group(1)
    if re.search(r"alert (handshake failure|protocol version|insufficient security)",
                 proc.stderr):
        return "refused"
    raise AssertionError(f"openssl s_client -{protocol}: neither a handshake nor an alert "
                         f"from nginx:\n{proc.stderr}")


def effective_ssl(lab: "NginxLab", name: str, directive: str,
                  port: int = HTTPS_PORT) -> Optional[List[str]]:
    """The arguments of directive in effect for the block that answers name
    on port, read from what `nginx -T` prints (the running binary's own view
    of every file): the block's own (includes expanded), else the http
    level's, else None (nginx's built-in default)."""
    from certbot_nginx_webroot import lookup, parser
    from certbot_nginx_webroot.config import Config
    proc = subprocess.run([nginx_binary(), "-T", "-q", "-p", lab.prefix, "-c", lab.conf],
                          capture_output=True, text=True, check=True)
    parts = re.split(r"^# configuration file (.+):\n", proc.stdout, flags=re.M)
    files = {path: parser.parse(text, path) for path, text in zip(parts[1::2], parts[2::2])}
    config = Config(lab.conf, files)
    [match] = lookup.answering(config.servers(), name, port, use_default=False)
    for block in (match.server.ref, *config.http_blocks()):
        found = config.directives(block, directive)
        if found:
            return found[-1].args
    return None


def https_get(name: str, path: str = "/", port: int = HTTPS_PORT) -> tuple:
    """(status, headers as a lower-cased dict) of GET path over TLS with SNI name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
                        .encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(head[0].split()[1]), headers
