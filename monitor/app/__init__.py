"""The application, the top layer: the command line (``cli``), the offline demo (``demo``), the
all-in-one runner (``pipeline``), the process runtime (logging, /metrics, signals, the broker
check: ``runtime``) and the embedded broker's launcher (``broker``). It may import every other
layer; nothing imports it."""
