"""The controller: the one public API (``Controller``: load, run, subscribe, abort, fail_host,
release_barrier; connect, info, shell and quit come with the terminal), the run engine, the failure manager,
events and the journal.
"""
