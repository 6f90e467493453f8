"""Loading a spec file of either form: the one entry point the controller and the CLI call.

:func:`load_spec` picks the reader by the file's extension (``.xml`` → Plush XML, ``.yaml``/``.yml`` →
YAML) and always either returns a validated :class:`~plush.spec.model.Project` or raises
:class:`~plush.errors.SpecError` naming the file (missing file, unknown extension, every problem found).
The YAML reader is imported lazily, so XML users never pay for PyYAML. Controller-side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from plush.errors import SpecError, SpecProblem
from plush.spec.model import Project

__all__ = ["SPEC_SUFFIXES", "load_spec"]

SPEC_SUFFIXES = (".xml", ".yaml", ".yml")


def load_spec(path: Union[str, "os.PathLike[str]"]) -> Project:
    """The validated model of the spec at ``path``; :class:`SpecError` for any problem."""
    name = str(path)
    p = Path(path)
    if not p.is_file():
        why = "is a directory" if p.is_dir() else "does not exist"
        raise SpecError([SpecProblem("the spec file {}".format(why), file=name)])
    suffix = p.suffix.lower()
    if suffix == ".xml":
        from plush.spec.xmlreader import read_xml

        return read_xml(p)
    if suffix in (".yaml", ".yml"):
        from plush.spec.yamlreader import read_yaml

        return read_yaml(p)
    raise SpecError(
        [
            SpecProblem(
                "unknown spec file type {!r}".format(suffix or "(none)"),
                file=name,
                hint="name the file *.xml (Plush XML) or *.yaml / *.yml (YAML)",
            )
        ]
    )
