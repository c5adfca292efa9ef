"""Each feature's coordination: one unit of work, its services, the renderer and the workspace's Slack client."""
