"""Which server blocks answer a name, as the edits ask it (no certbot, no nginx)."""
import pytest

from certbot_nginx_webroot import sites
from site_configs import load


def test_ambiguity_names_both_places(tmp_path):
    config = load(tmp_path, "server { server_name a.example; }\n"
                  "server { server_name a.example; }\n")
    with pytest.raises(sites.SiteError) as err:
        sites.answering(config, "a.example", 80)
    assert "sites.conf:1" in str(err.value) and "sites.conf:2" in str(err.value)


def test_plain_names(tmp_path):
    config = load(tmp_path, "server { server_name A.example *.b.example ~^c _ localhost "
                  "www.* $host d.example; }\n")
    assert sites.plain_names(config) == {"a.example", "d.example"}
