"""The node side of swarm tasks: the agent that follows this node's assignments and runs each task as an
ordinary container through a narrow executor over the local engine."""
