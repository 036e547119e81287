"""Every Redis key and channel Corridor uses, named here and nowhere else.

All keys start with the deployment's prefix (``CORRIDOR_REDIS_PREFIX``, ``corridor`` by default),
so that several deployments can share one Redis. A driver's keys carry its id in braces, a Redis
Cluster hash tag: both keys of a driver live in one slot, as the outbox's script needs.

=====================================  =======  ==============================================
key                                    type     written by → read by
=====================================  =======  ==============================================
``<p>:state:routes:<partition>``       hash     worker (routes agent) → worker rebuild, dispatch
``<p>:state:positions:<partition>``    hash     worker (routes agent) → worker rebuild, dispatch
``<p>:state:partitions``               string   worker → dispatch (how many route partitions)
``<p>:state:events``                   hash     worker (fan-out) → worker rebuild, dispatch
``<p>:state:expiry``                   zset     worker → worker (pruning of tombstones)
``<p>:state:quarantine``               hash     worker → operators
``<p>:state:broadcast:stream``         stream   worker (fan-out) → every worker
``<p>:state:broadcast:last``           string   worker (fan-out): the broadcast's numbering
``<p>:drv:{<driver>}:alerts``          stream   worker (outbox) → gateway
``<p>:drv:{<driver>}:seen``            hash     worker (outbox): what each alert id delivered
``<p>:dispatch``                       stream   worker (outbox) → gateway (dispatchers)
``<p>:dispatch:scene``                 string   demo → gateway (drawn under the map)
``<p>:wake``                           channel  worker (outbox) → gateways
``<p>:feed:<name>:snapshot``           string   feed poller → itself (what the last poll held)
``<p>:port:estimate:<call>``           string   publish API → itself (port-call estimates)
``<p>:publishers``                     hash     ``corridor publisher`` → publish API
``<p>:publisher-keys``                 hash     ``corridor publisher`` → publish API (key id → name)
=====================================  =======  ==============================================
"""

from __future__ import annotations

DRIVER_OPEN = ":drv:{"
"""Between the prefix and a driver's id in the driver's keys (``driver_key_head``)."""
DRIVER_CLOSE = "}:"
"""Between a driver's id and the name of one of its keys (``alerts``, ``seen``)."""


def routes_key(prefix: str, partition: int) -> str:
    """The active routes of one partition of the routes topic (route id → route message)."""
    return f"{prefix}:state:routes:{partition}"


def positions_key(prefix: str, partition: int) -> str:
    """The last position of each route of one partition (route id → position message)."""
    return f"{prefix}:state:positions:{partition}"


def partitions_key(prefix: str) -> str:
    """How many partitions the routes topic has, as the workers last saw it."""
    return f"{prefix}:state:partitions"


def events_key(prefix: str) -> str:
    """The events in force and their tombstones (event id → stamped event)."""
    return f"{prefix}:state:events"


def expiry_key(prefix: str) -> str:
    """When each stored tombstone may be pruned (member → Unix time)."""
    return f"{prefix}:state:expiry"


def quarantine_key(prefix: str) -> str:
    """Stored records a worker could not use, with the reason, for an operator to look at."""
    return f"{prefix}:state:quarantine"


def broadcast_stream_key(prefix: str) -> str:
    """The event broadcast: envelopes of stamped events, entries numbered ``1-0, 2-0, …``."""
    return f"{prefix}:state:broadcast:stream"


def broadcast_counter_key(prefix: str) -> str:
    """The number of the broadcast's last entry."""
    return f"{prefix}:state:broadcast:last"


def driver_key_head(prefix: str) -> str:
    """What a driver's keys start with, before the driver's id (for scripts that build them)."""
    return f"{prefix}{DRIVER_OPEN}"


def driver_stream_key(prefix: str, driver_id: str) -> str:
    """The stream of a driver's alerts, as delivered."""
    return f"{prefix}{DRIVER_OPEN}{driver_id}{DRIVER_CLOSE}alerts"


def driver_seen_key(prefix: str, driver_id: str) -> str:
    """What each alert id of a driver last delivered (a content mark)."""
    return f"{prefix}{DRIVER_OPEN}{driver_id}{DRIVER_CLOSE}seen"


def dispatch_stream_key(prefix: str) -> str:
    """The bounded stream of every driver's delivered alerts, for dispatchers."""
    return f"{prefix}:dispatch"


def scene_key(prefix: str) -> str:
    """An optional JSON document drawn under the dispatch map (waterways, terminals, a title)."""
    return f"{prefix}:dispatch:scene"


def wake_channel(prefix: str) -> str:
    """The pub/sub channel on which the outbox announces what it appended (see
    ``stream.worker.outbox.wake_lines`` for the message's format)."""
    return f"{prefix}:wake"


def feed_snapshot_key(prefix: str, feed_name: str) -> str:
    """What a feed held at its last poll (validators, and each record's digest and event), to send
    only what changed."""
    return f"{prefix}:feed:{feed_name}:snapshot"


def port_estimate_prefix(prefix: str) -> str:
    """What the keys of port-call estimates start with (followed by the call's id)."""
    return f"{prefix}:port:estimate:"


def publishers_key(prefix: str) -> str:
    """Publishers by name (name → record)."""
    return f"{prefix}:publishers"


def publisher_keys_key(prefix: str) -> str:
    """Publishers by API key id (key id → name)."""
    return f"{prefix}:publisher-keys"
