"""The agent zipapp bundle (not built yet).

For SSH hosts the controller will ship the agent as ONE file: a zipapp of ``plush.agent``,
``plush.protocol``, ``plush.processes``, ``plush.hostmon``, ``plush.errors`` and ``plush.spec.model`` /
``plush.spec.paths`` (the closure computed by ``tests/test_layering.py::shipped_modules``), runnable as
``python3 plush-agent.pyz --connect ...`` on a bare Python 3.8. It will be cached on hosts by content hash.
The local launcher does not need it: local agents run from the source tree (``PYTHONPATH``).
"""

from __future__ import annotations

__all__: list[str] = []
