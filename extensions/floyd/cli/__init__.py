"""The ``floyd`` command line: one module per command group."""
