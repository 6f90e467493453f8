"""The file manager: software packages, transfer plans, content-hash cache, installs, output collection."""
