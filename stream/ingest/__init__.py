"""Ingest: everything that brings events into ``corridor.events``.

The feed pollers (``poll``: HTTP feeds diffed against their last snapshot; ``ais``: AIS sentences
from TCP, UDP or a file), the sink they share (``sink``), the producer that packs events into
envelopes and waits for the broker's acknowledgement (``producer``), and the publish API with its
publisher credentials (``api``, ``publishers``). Deployed as ``corridor feed`` and ``corridor api``.
"""
