"""Exchange simulator: local Binance USD-M and Bybit v5 linear websocket servers playing a scenario.

``scenario`` (pure) builds the market; ``binance`` and ``bybit`` (pure, sans-I/O) speak each venue's
protocol; ``server.ExchangeSimulator`` owns the sockets and the ``ledger`` of what was sent. This
package imports nothing on purpose, so the pure modules stay free of websockets.
"""
