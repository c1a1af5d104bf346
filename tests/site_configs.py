"""A configuration of server blocks for the rules' unit tests: nginx.conf
includes sites.conf, which holds the blocks a test writes."""
from certbot_nginx_webroot import edit, parser
from certbot_nginx_webroot.config import Config

M = edit.MARK


def load(tmp_path, sites_text):
    (tmp_path / "nginx.conf").write_text("http {\n    include sites.conf;\n}\n")
    (tmp_path / "sites.conf").write_text(sites_text)
    return Config.load(str(tmp_path / "nginx.conf"))


def text(config):
    return parser.dump(config.files[next(p for p in config.files if p.endswith("sites.conf"))])
