"""One module per family of gorae commands; each exposes COMMANDS = {key: (Spec, handler)}."""
