"""Exchange simulator: local websocket servers speaking each simulated venue's protocol.

``scenario`` and ``reflexive`` (pure) build the market out of the plain events of ``events``; one
pure, sans-I/O module per venue in ``venues`` (discovered: each defines its ``SPEC``) speaks that
venue's protocol as its documentation describes it and describes the venue to everything else
(``wire.VenueSpec``); ``server.ExchangeSimulator`` owns the sockets and the ``ledger`` of what was
sent. This package imports nothing on purpose, so the pure modules stay free of websockets.
"""
