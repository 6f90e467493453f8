"""Front end: the `plush` commands, the interactive terminal and rendering. Calls only the controller API."""
