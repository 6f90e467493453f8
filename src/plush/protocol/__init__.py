"""The wire protocol between controller, proxies and agents: framing, messages, the sans-IO connection
and liveness state machines. Pure: standard library only, Python 3.8 syntax, no asyncio (ships to agents).
"""
