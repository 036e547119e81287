"""What every Corridor process shares: settings, structured logs, metrics, health, retries, and the
envelope format of ``corridor.events``."""
