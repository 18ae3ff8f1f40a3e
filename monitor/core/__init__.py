"""The shared contracts: what producers, consumers, alerting, the simulator and the application
all speak (event schema, record codecs, symbols, errors, configuration, metric definitions,
topics, recordings, lifecycle shapes). The bottom layer: it imports nothing above it
(``[tool.importlinter]`` in pyproject.toml, checked by the test suite)."""
