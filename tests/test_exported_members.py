import plush


def test_all_names_exist_and_are_sorted() -> None:
    for name in plush.__all__:
        assert hasattr(plush, name), name
    public = {n for n in dir(plush) if not n.startswith("_")} - {
        "errors",
        "spec",
        "config",
    }
    assert public <= set(plush.__all__), public - set(plush.__all__)
