"""The worker: the Faust app and what it keeps in Redis.

``app`` builds the Faust app, its topics and the runtime state the agents (top-level ``agents/``)
share; ``state`` keeps routes, positions and events in Redis so that a restarted worker resumes;
``broadcast`` reads the event broadcast every worker follows; ``outbox`` stores alerts in the
drivers' streams and wakes the gateways; ``affected`` finds the drivers an event batch touches.
Deployed as ``corridor worker``.
"""
