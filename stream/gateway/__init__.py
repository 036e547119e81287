"""The gateway: drivers' websockets and the dispatchers' page.

``server`` accepts connections and checks tokens (``tokens``, signed with the ``keyring``);
``hub`` follows the drivers' alert streams in Redis and fans them out to sockets; ``gc_policy``
decides when an idle driver's stream is trimmed; ``dispatch`` serves the dispatchers' live map and
alert feed with its ``static`` files. Deployed as ``corridor gateway``.
"""
