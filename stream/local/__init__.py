"""Local services: the embedded broker and Redis that ``make demo`` and the tests start
(``services``), and the supervisor that runs Corridor's processes and waits for them to be ready
(``supervisor``). Nothing here runs in production, where the broker and Redis are given by URL.
"""
