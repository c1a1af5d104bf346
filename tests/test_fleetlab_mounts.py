"""The fleet lab's rule for when a node's bind mounts would leak out of its
mount namespace (fleetlab.propagates), on mountinfo texts."""
import fleetlab

MOUNTINFO = """\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /tmp rw,nosuid - tmpfs tmpfs rw
31 22 0:26 / /srv rw shared:5 master:2 - tmpfs tmpfs rw
"""


def test_the_mount_holding_the_path_decides():
    assert not fleetlab.propagates(MOUNTINFO, "/tmp/fleet-lab-x/node")  # /tmp: private
    assert fleetlab.propagates(MOUNTINFO, "/srv/fleet/node")
    assert fleetlab.propagates(MOUNTINFO, "/home/fleet")  # only / holds it: shared


def test_a_mount_point_is_matched_whole_not_as_a_prefix():
    assert fleetlab.propagates(MOUNTINFO, "/tmpfoo/node")  # under /, not /tmp


def test_a_chroots_root_that_is_not_listed_does_not_propagate():
    assert not fleetlab.propagates("68 46 0:40 / /proc rw - proc proc rw\n", "/tmp/x")
