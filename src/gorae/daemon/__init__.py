"""The daemon's own concerns below the composition root: its configuration (`config.py`: dockerd's flags and
daemon.json keys) and its roots (`roots.py`: layout, modes, and the claim that makes one daemon their only
user). The services are built in `gorae.cmd.wiring`; nothing here imports `api` or `cli`.
"""
