"""The spec language: the application model, block paths, the Plush XML and YAML readers, the XML writer,
validation and the block DAG.

Pure: no I/O beyond reading the spec file, no asyncio. ``model`` and ``paths`` ship to agents (stdlib,
Python 3.8); the readers use defusedxml and PyYAML and stay on the controller.
"""

from plush.spec.model import (
    Application,
    BarrierBlock,
    Block,
    Component,
    ComponentBlock,
    ExitPolicy,
    HostCount,
    LivenessMonitor,
    Package,
    Process,
    ProcessBlock,
    Project,
    ResourceRef,
    Software,
    WorkflowBlock,
    from_dict,
    to_dict,
)
from plush.spec.paths import BlockPath

__all__ = [
    "Application",
    "BarrierBlock",
    "Block",
    "BlockPath",
    "Component",
    "ComponentBlock",
    "ExitPolicy",
    "HostCount",
    "LivenessMonitor",
    "Package",
    "Process",
    "ProcessBlock",
    "Project",
    "ResourceRef",
    "Software",
    "WorkflowBlock",
    "from_dict",
    "to_dict",
]
