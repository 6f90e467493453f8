"""Resources: the host model, pools, directory files (XML/YAML inventories), the matcher, and providers/
(local sandbox, ssh, netns, command). The matcher is pure; providers do I/O.
"""
