"""The cluster's identity: its root CA and node certificates (`authority`), join tokens (`tokens`)."""
