"""The installer over real user sites: `certbot install -d NAME --redirect`
as this plugin does it, on every site of certbot's own round-trip set
(../shared/corpus/certbot-roundtrip/79-configs), judged by the real `nginx -t`.

Each site goes into a fresh temporary prefix (`http { include site.conf; }`);
files it names that are not on this machine (includes, log directories,
certificates) are made under that prefix and the site's paths point there.
Sites that nginx -t still rejects before any edit, or that name no plain
host name, are counted as untestable.  Every plain name of every other site
is installed on its own fresh copy: a self-signed certificate for that name,
then deploy_cert, the redirect enhancement and save (which runs nginx -t)
through the plugin's own certbot entry points.

    python3 bench/corpus_install.py [--verbose] [--corpus DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from certbot import errors  # noqa: E402

from certbot_nginx_webroot import plugin, sites  # noqa: E402
from certbot_nginx_webroot.config import Config  # noqa: E402

CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus", "certbot-roundtrip", "79-configs")
MAIN = """events {}
http {
    log_format combined_plus '$remote_addr';
    include site.conf;
}
"""


def nginx_t(conf: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nginx", "-t", "-c", conf], capture_output=True, text=True)


def self_signed(directory: str, name: str, stem: str = "cert"):
    cert, key = os.path.join(directory, stem + ".pem"), os.path.join(directory, stem + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name}", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


_MISSING = re.compile(r'(?:open\(\) |cannot load certificate (?:key )?)"([^"]+)"')


def provide_missing_files(conf: str, site: str, work: str) -> bool:
    """Make nginx -t pass before any edit: each file the site names that is
    not here (includes, logs, certificates) is moved under work and made
    there (an empty file, or a throwaway certificate).  Nothing outside work
    is touched.  False when nginx -t still fails."""
    placeholder = None
    for _ in range(30):
        result = nginx_t(conf)
        if result.returncode == 0:
            return True
        found = _MISSING.search(result.stderr)
        if found is None:
            return False
        missing = found.group(1)
        if missing.startswith(work):
            local = missing
        else:
            local = os.path.join(work, "missing", missing.lstrip("/"))
            with open(site) as f:
                text = f.read()
            if missing not in text:
                return False
            with open(site, "w") as f:
                f.write(text.replace(missing, local))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        if "certificate" in found.group(0):
            placeholder = placeholder or self_signed(work, "placeholder", "old")
            shutil.copy(placeholder[1 if "key" in found.group(0) else 0], local)
        else:
            open(local, "a").close()
    return False


def stage(site: str, work: str):
    """A copy of site in work/nginx, included by a main file of ours, with
    the files it names made: (main file, whether nginx -t can judge it)."""
    prefix = os.path.join(work, "nginx")
    os.makedirs(prefix)
    shutil.copy(site, os.path.join(prefix, "site.conf"))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(MAIN)
    return conf, provide_missing_files(conf, os.path.join(prefix, "site.conf"), work)


def site_names(site: str, work: str):
    """The plain names a site's server blocks answer (None: not testable)."""
    conf, testable = stage(site, work)
    if not testable:
        return None
    config = Config.load(conf)
    plain = sites.plain_names(config)
    names = []
    for server in config.servers():
        names += [n.lower() for n in server.names if n.lower() in plain and n.lower() not in names]
    return names


def install(site: str, work: str, name: str):
    """(outcome, detail) for one name of one site."""
    conf, testable = stage(site, work)
    prefix = os.path.dirname(conf)
    if not testable:
        return "untestable", nginx_t(conf).stderr.strip().splitlines()[-2:]
    cert, key = self_signed(work, name)
    values = dict(
        nginx_webroot_server_root=prefix, nginx_webroot_ctl="nginx",
        nginx_webroot_path=os.path.join(work, "webroot"), http01_port=80, https_port=443,
        config_dir=os.path.join(work, "le"), work_dir=os.path.join(work, "work"),
        backup_dir=os.path.join(work, "work/backups"),
        temp_checkpoint_dir=os.path.join(work, "work/temp"),
        in_progress_dir=os.path.join(work, "work/progress"), strict_permissions=False)
    inst = plugin.NginxWebroot(types.SimpleNamespace(**values), "nginx-webroot")
    try:
        inst.deploy_cert(name, cert, key, None, cert)
        try:
            inst.enhance(name, "redirect")
        except errors.PluginEnhancementAlreadyPresent:
            pass
        inst.save("install")
    except errors.Error as err:
        return "refused", f"{name}: {err}"
    result = nginx_t(conf)
    if result.returncode != 0:
        return "nginx -t failed", result.stderr.strip()
    return "installed", name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--corpus", default=CORPUS, help="folder of site files")
    args = parser.parse_args()
    counts = {}
    site_counts = {}
    for entry in sorted(os.listdir(args.corpus)):
        site = os.path.join(args.corpus, entry)
        work = tempfile.mkdtemp(prefix="corpus-install-")
        try:
            names = site_names(site, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not names:
            site_counts["untestable"] = site_counts.get("untestable", 0) + 1
            continue
        outcomes = set()
        for name in names:
            work = tempfile.mkdtemp(prefix="corpus-install-")
            try:
                outcome, detail = install(site, work, name)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            counts[outcome] = counts.get(outcome, 0) + 1
            outcomes.add(outcome)
            if args.verbose or outcome != "installed":
                print(f"{entry} {name}: {outcome}: {detail}")
        worst = "installed" if outcomes == {"installed"} else "not all installed"
        site_counts[worst] = site_counts.get(worst, 0) + 1
    print("sites: " + ", ".join(f"{k} {v}" for k, v in sorted(site_counts.items())))
    print("names: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
