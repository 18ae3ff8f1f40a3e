"""Exchange simulator: local websocket servers speaking each of the ten venues' protocols.

``scenario`` (pure) builds the market; one pure, sans-I/O module per venue (``binance``,
``bybit``, ``okx``, ``htx``, ``gate``, ``bitget``, ``bitmex``, ``deribit``, ``kraken``,
``hyperliquid``, listed in ``venues``) speaks that venue's protocol as its documentation describes
it; ``server.ExchangeSimulator`` owns the sockets and the ``ledger`` of what was sent. This package
imports nothing on purpose, so the pure modules stay free of websockets.
"""
