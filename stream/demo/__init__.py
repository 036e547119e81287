"""The demo: trucks, real closures time-shifted to now, and drivers listening on websockets."""
