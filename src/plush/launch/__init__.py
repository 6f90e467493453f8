"""Bootstrapping agents: the local launcher, the SSH launcher, and the agent zipapp bundle."""
