"""HTX (Huobi) USDT-margined swaps: ``public.*.liquidation_orders`` liquidations on the notification
endpoint and ``market.<CODE>.trade.detail`` trades on the market-data endpoint (gzip frames)."""

from producers.htx.parser import HtxAdapter

__all__ = ["HtxAdapter"]
