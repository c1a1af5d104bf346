"""Our own server block, in our own file, for names no server block
answers: the challenge location and 404 for anything else."""
import fnmatch
import os
from typing import Optional, Sequence, Tuple

from certbot_nginx_webroot import challenge_location, edit, parser, sites
from certbot_nginx_webroot.config import Config
from certbot_nginx_webroot.parser import Node


OWN_FILE = "certbot-nginx-webroot.conf"


def own_file(config: Config) -> Tuple[str, str, Optional[Node]]:
    """Where our own server blocks go: (path as nginx sees it, path on this
    machine, http block to add an include to, or None when an existing
    http-level include glob covers the path).  For nginx in a container,
    a glob's directory on a volume (the official image's conf.d/)."""
    https = list(config.http_blocks())
    if not https:
        raise sites.SiteError(f"no http block in {config.main_path}", file=config.main_path)
    unreachable: Optional[str] = None  # a directory an include covers, in nginx's image
    for http in https:
        for node in http.children:
            if node.name == "include" and node.args and "*" in node.args[0]:
                pattern = config.include_pattern(node)
                candidate = os.path.join(os.path.dirname(pattern), OWN_FILE)
                if not fnmatch.fnmatch(candidate, pattern):
                    continue
                local = config.local_path(candidate)
                if local is None:
                    unreachable = unreachable or candidate
                elif os.path.isdir(os.path.dirname(local)):
                    return candidate, local, None
    path = os.path.join(config.prefix, OWN_FILE)
    if config.local_path(path) is None and unreachable is not None:
        path = unreachable  # the mount to advise: the included directory's
    local = config.paths.local_path(path)  # a Problem naming the mount to add, if none
    return path, local, (None if local in config.files else https[0])


def add_own_server(config: Config, names: Sequence[str], root: str, port: int) -> str:
    """A minimal server block answering names on port with the challenge
    location (and 404 for anything else), in our own file; returns its path."""
    ipv6 = any(listen.ipv6 for s in config.servers() for listen in s.listens)
    lines = [f"server {{  {edit.MARK}", f"    listen {port};  {edit.MARK}"]
    if ipv6:
        lines.append(f"    listen [::]:{port};  {edit.MARK}")
    lines.append(f"    server_name {' '.join(names)};  {edit.MARK}")
    lines.extend("    " + line for line in challenge_location.challenge_location(root).split("\n"))
    lines += [f"    location / {{ return 404; }}  {edit.MARK}", f"}}  {edit.MARK}"]
    path, local, http = own_file(config)
    text = "\n".join(lines) + "\n"
    if local in config.files:  # the file is all ours: append
        text = parser.dump(config.files[local]).rstrip("\n") + "\n\n" + text
    elif http is not None:  # no include covers our file yet: add one
        edit.insert(http, len(http.children), f"include {path};  {edit.MARK}",
                    config.file_of(http).newline, http.file)
        config.mark_changed(http)
    config.add_file(local, parser.parse(text, local))
    return local
