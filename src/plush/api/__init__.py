"""Front ends over :class:`plush.Controller` for other processes: today the control socket of the ``plush``
commands (``runtime``: where it lives and how a client finds it; ``control``: its wire format and client;
``server``; ``handlers``: the registry of requests). The HTTP JSON API and XML-RPC come here too."""
