"""Alerting: rules evaluated on the risk values (``rules``); delivery comes with issue 5."""
