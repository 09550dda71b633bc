"""The package version, in a module of its own (layer 0): the modules that record it (a run folder's
versions.json, the report's footer) import it from here, not from the package root, which sits above them."""

__version__ = "0.1.0"
