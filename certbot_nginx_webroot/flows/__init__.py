"""Flows: what one certbot run does with nginx, one job per module.

- authenticate.py: write challenge files, self-check, add the challenge
  location when needed, reload, check again, keep or undo.
- selfcheck.py: ask nginx for the challenge files as the CA will, and say
  why not when it does not serve them.
- install.py and placement.py: put a certificate in the right server blocks.
- enhance.py: the enhancements certbot asks for, one function each.
- transaction.py: an edit of the configuration: test first, refuse files
  changed on disk, write atomically, ``nginx -t``, roll back.
- golive.py: reload, then wait until the new certificates are served.
- batch.py and owed.py: one reload per ``certbot renew`` run per nginx,
  and the reloads a killed run still owes, kept on disk.
- node.py and fleet.py: several nginx nodes behind a load balancer, each
  read, edited and given its certificates over ssh; the flows above run on
  every node, all or nothing.

Flows import no certbot module: the edge (plugin.py) hands them a
``Run`` (run.py) with the options, the controller, the probes and the
configuration of this run, and turns the Problems they raise into
certbot's errors.
"""
