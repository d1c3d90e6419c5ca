"""The `config-bisect` command line: thin click drivers around the library packages."""
