"""An emulated cluster on one machine (``plush cluster``): hosts as Linux network namespaces, each with its own
address on a bridge, its own sshd and its own private directories (on a tmpfs of its own by default), reached
by the SSH launcher through a directory file of ``type="ssh"`` entries.

- :mod:`plush.cluster.plan` -- pure: names, the address plan, file system sizes, the network's command lines.
- :mod:`plush.cluster.hostfiles` -- pure: a host's directories, the command line that starts it, and the files
  written (sshd and client configs, ``/etc/hosts``, known_hosts, the directory file).
- :mod:`plush.cluster.state` -- the state file of a cluster (``$XDG_STATE_HOME/plush/clusters/NAME.json``).
- :mod:`plush.cluster.machine` -- the thin I/O: running ``ip``/``tc``, processes of a namespace, signals.
- :mod:`plush.cluster.manage` -- up, down, status, cut/restore, freeze/thaw.
- :mod:`plush.cluster.hostinit` -- the first program of a host: its private mounts, then its sshd.

docs/cluster.md is the user's guide.
"""
