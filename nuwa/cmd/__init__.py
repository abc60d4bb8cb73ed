"""Handlers of the ``nuwa`` subcommands, one module per command family.

Each module exposes ``run_<command>(args) -> int`` (exit code); ``nuwa.cli`` owns the parser.
"""
