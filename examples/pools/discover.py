#!/usr/bin/env python3
"""A discovery command: prints the hosts it finds as a JSON host list (docs/pools.md).

Plush runs it (an argv list, with a deadline) whenever it fills or refreshes its pool, the way SWORD and
CoMon fed Plush. This one "discovers" N sandbox hosts on this machine (N from the first argument, default 3)
and gives each the load it would have measured; a real one would ask a monitoring service.
"""

import json
import os
import sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
load = os.getloadavg()[0]
hosts = [
    {"hostname": f"found{k}", "type": "local", "group": "found", "site": "here", "cpu_load": round(load, 2), "vn": k}
    for k in range(1, count + 1)
]
json.dump(hosts, sys.stdout, indent=1)
print()
