"""The ``factory`` command line and the one-command demo runner."""
