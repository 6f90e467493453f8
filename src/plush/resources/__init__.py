"""Resources: the hosts a controller may use, where they come from, and which a run gets.

``host`` (the Host model and the Pool), ``hostset`` (ClusterShell host sets), ``sandbox`` (the local sandbox's
properties and checks), the pool files (``poolfile``: the kind told by content; ``directory``: the Plush
resource directory; ``inventory``: the YAML inventory and the JSON host list; ``poolentry``: the fields they
share), ``providers`` (local sandbox, pool file, discovery command), ``requirements`` and ``matcher``. All
but the providers are pure; providers do I/O.
"""
