"""The host monitor: load average, free memory, disk. Standard library only, Python 3.8 syntax."""
