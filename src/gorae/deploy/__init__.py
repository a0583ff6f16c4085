"""`gorae deploy`: git-push deploys on the server. A repository whose pre-receive hook builds the pushed commit
through the daemon, checks the new container's health and swaps it in for the old one (docs/deploy.md).

Client side: it drives the daemon over the Engine API only (`gorae.client`), and imports nothing from the
daemon's layers; the CLI (`gorae.cli.commands.deploy`) parses the flags and hands the container settings in.
"""
