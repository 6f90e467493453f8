"""Resources: the hosts a controller may use, and where they come from.

``host`` (the Host model and the Pool), ``hostset`` (ClusterShell host sets), ``sandbox`` (the local sandbox's
properties and checks), the pool files (``poolfile``: the kind told by content; ``directory``: the Plush
resource directory; ``inventory``: the YAML inventory and the JSON host list; ``poolentry``: the fields they
share) and ``providers`` (local sandbox, pool file, discovery command), and the matcher. The model, the pool
file readers and the matcher are pure; providers do I/O.
"""
