import subprocess
import sys
import types

import plush


def test_all_names_exist_and_are_sorted() -> None:
    for name in plush.__all__:
        assert hasattr(plush, name), name
    # subpackages appear as attributes once any test imported them: they are not exported names
    public = {n for n in dir(plush) if not n.startswith("_") and not isinstance(getattr(plush, n), types.ModuleType)}
    assert public <= set(plush.__all__), public - set(plush.__all__)


def test_the_controller_is_exported_and_loaded_only_when_used() -> None:
    from plush import Controller
    from plush.controller.api import Controller as Defined

    assert Controller is Defined and "Controller" in plush.__all__
    # agents import the package too: importing it must not load the controller (third-party, Python 3.11)
    code = "import sys, plush; assert 'plush.controller' not in sys.modules, sorted(sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
