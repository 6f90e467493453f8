import types

import plush


def test_all_names_exist_and_are_sorted() -> None:
    for name in plush.__all__:
        assert hasattr(plush, name), name
    # subpackages appear as attributes once any test imported them: they are not exported names
    public = {n for n in dir(plush) if not n.startswith("_") and not isinstance(getattr(plush, n), types.ModuleType)}
    assert public <= set(plush.__all__), public - set(plush.__all__)
