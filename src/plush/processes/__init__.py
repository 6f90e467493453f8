"""Processes on a host: exit policies (pure), the process runner (sessions, whole-tree kill, output
streaming with backpressure) and the liveness monitor. Standard library only, Python 3.8 syntax.
"""
