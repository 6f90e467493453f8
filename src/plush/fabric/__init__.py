"""asyncio adapters for the overlay: the controller listener (TCP+TLS, token), the agent dialer, the
SSH-stdio transport. They only move bytes between sockets and the sans-IO protocol objects.
"""
