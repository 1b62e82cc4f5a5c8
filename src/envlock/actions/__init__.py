"""Use cases: one function per command, called by the CLI, built from the layers below.

The CLI parses arguments and renders results; everything a command decides lives here.
"""
