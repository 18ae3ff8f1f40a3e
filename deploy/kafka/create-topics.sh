#!/usr/bin/env bash
# Create the project's topics on a real cluster: the per-exchange events, the risk snapshots, the
# alert transitions and their dead letters (the services also create missing topics
# at start-up with the configured partitions and retention; run this to manage them explicitly).
# Apache Kafka: KAFKA_BIN=/opt/kafka/bin ./create-topics.sh broker:9092
# Redpanda:     RPK=1 ./create-topics.sh broker:9092
# The exchanges: EXCHANGES="binance bybit okx" (default: binance bybit, the ones enabled by
# default); each gets its events topic (and, with DEAD_LETTER=1, its dead-letter topic).
set -euo pipefail
BOOTSTRAP=${1:?usage: create-topics.sh BOOTSTRAP [PREFIX] [PARTITIONS] [REPLICATION]}
PREFIX=${2:-cascade}
PARTITIONS=${3:-12}
REPLICATION=${4:-3}
RETENTION_MS=${RETENTION_MS:-21600000}
topics=("$PREFIX.risk" "$PREFIX.alerts" "$PREFIX.alerts.deadletter")
for exchange in ${EXCHANGES:-binance bybit}; do
  topics+=("$PREFIX.events.$exchange")
  if [ "${DEAD_LETTER:-}" = 1 ]; then topics+=("$PREFIX.deadletter.$exchange"); fi
done
for topic in "${topics[@]}"; do
  if [ "${RPK:-}" = 1 ]; then
    rpk topic create "$topic" -X brokers="$BOOTSTRAP" -p "$PARTITIONS" -r "$REPLICATION" \
      -c retention.ms="$RETENTION_MS"
  else
    "${KAFKA_BIN:-/opt/kafka/bin}/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create \
      --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
      --replication-factor "$REPLICATION" --config retention.ms="$RETENTION_MS"
  fi
done
