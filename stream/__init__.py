"""Corridor: live traffic events matched against truck routes, alerts pushed to drivers."""

__version__ = "0.1.0"
