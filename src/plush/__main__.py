"""``python -m plush``: the same as the ``plush`` command."""

from plush.shell.commands import main

if __name__ == "__main__":
    main()
