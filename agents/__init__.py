"""Faust agents: thin wiring from a topic through the pure core to a topic or a sink."""
