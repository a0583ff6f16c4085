"""The `gorae` command line: docker's commands, flags, output and exit codes, talking to the daemon only
through the Engine API (`gorae.client`). `main.py` dispatches; `commands/` holds one module per family of
commands; `flags.py` parses docker-style flags; `terminal.py`/`streaming.py` handle ttys and attached I/O.
"""
