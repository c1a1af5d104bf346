"""Going live when the HTTPS port certbot assumes is not reachable from
here: nginx in a container that publishes only its own ports (a renewal
does not know --https-port, so certbot assumes 443).  The quick loopback
check gives way to the ports the configuration names; fakes handed in."""
import types

from certbot_nginx_webroot.flows.golive import GoLive
from certbot_nginx_webroot.flows.run import Run
from certbot_nginx_webroot.problems import Problem


class Published:
    """A container publishing 5443 only."""

    def reach(self, addr, port):
        if port != 5443:
            raise Problem(f"the container does not publish port {port}: add -p {port}:{port}")
        return "127.0.0.1", 5443


class Net:
    def __init__(self, served):
        self.served = served
        self.asked = []

    def served_certificate(self, name, addr, port, timeout, key_type=None,
                           proxy_protocol=False):
        self.asked.append((addr, port))
        return self.served


def test_an_unpublished_port_is_not_served_there_rather_than_an_error():
    net = Net(b"new")
    live = GoLive(Run(types.SimpleNamespace(https_port=443), Published(), net))
    assert live.served_on_loopback("a.example", 443, None, b"new") is False
    assert net.asked == []
    assert live.served_on_loopback("a.example", 5443, None, b"new") is True
    assert net.asked == [("127.0.0.1", 5443)]
