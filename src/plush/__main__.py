"""``python -m plush``: the same as the ``plush`` command."""

from plush.shell.cli import main

if __name__ == "__main__":
    main()
