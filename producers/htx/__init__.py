"""HTX (Huobi) USDT-margined swaps: ``public.*.liquidation_orders`` liquidations and
``public.<CODE>.funding_rate`` on the notification endpoint, ``market.<CODE>.trade.detail`` trades
on the market-data endpoint, ``market.<CODE>.mark_price.1min`` / ``.index.1min`` klines on ws_index
(gzip frames), open interest by REST polling (``swap_open_interest``)."""

from producers.htx.parser import HtxAdapter

__all__ = ["HtxAdapter"]
