"""What ``nginx -V`` says of a binary, and what nginx's version means for
the directives the plugin writes (pure: nothing here runs nginx)."""
import re
import shlex
from typing import NamedTuple, Optional, Tuple

# nginx 1.25.1 made HTTP/2 a per-server `http2 on;` and deprecated the
# per-address `listen ... http2`; older versions know only the listen flag.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
HTTP2_LISTEN = "listen ... http2"
HTTP2_DIRECTIVE = "http2 on"


class BuildInfo(NamedTuple):
    """What ``nginx -V`` says of a binary."""
    version: Optional[Tuple[int, ...]]  # nginx core version; None if unknown
    configure: Tuple[str, ...]          # the configure arguments

    def option(self, name: str) -> Optional[str]:
        """The value of ``--name=value``, None when not given."""
        prefix = f"--{name}="
        return next((a[len(prefix):] for a in self.configure if a.startswith(prefix)), None)

    @property
    def http2_form(self) -> Optional[str]:
        """How this nginx wants HTTP/2 turned on; None when it was built
        without HTTP/2 or its version is unknown (then the plugin adds none)."""
        if self.version is None or "--with-http_v2_module" not in self.configure:
            return None
        return HTTP2_DIRECTIVE if self.version >= HTTP2_DIRECTIVE_SINCE else HTTP2_LISTEN


def parse_build_info(text: str) -> BuildInfo:
    """``nginx -V`` output as BuildInfo.  The core version is the one after
    ``nginx/`` (Tengine and freenginx print it so too); OpenResty prints its
    own four-part version, whose first three parts are the core's."""
    found = (re.search(r"nginx/(\d+(?:\.\d+)+)", text)
             or re.search(r"version: \S+?/(\d+(?:\.\d+)+)", text))
    version = tuple(int(part) for part in found.group(1).split(".")[:3]) if found else None
    arguments = re.search(r"^configure arguments:(.*)$", text, re.MULTILINE)
    if arguments is None:
        return BuildInfo(version, ())
    try:  # values are shell-quoted: --with-cc-opt='-g -O2'
        configure = shlex.split(arguments.group(1))
    except ValueError:
        configure = arguments.group(1).split()
    return BuildInfo(version, tuple(configure))
