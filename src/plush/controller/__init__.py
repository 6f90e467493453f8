"""The controller: the one public async API (load, connect, run, info, shell, fail_host,
release_barrier, abort, quit, subscribe), the run engine, the failure manager, events and the journal.
"""
