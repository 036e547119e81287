"""The port side, pure: vessel tracks, port infrastructure, closure predictions, port-call delays."""
