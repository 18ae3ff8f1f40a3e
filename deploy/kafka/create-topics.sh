#!/usr/bin/env bash
# Create the project's topics on a real cluster: the per-exchange events, the risk snapshots, the
# alert transitions and their dead letters (the services also create missing topics
# at start-up with the configured partitions and retention; run this to manage them explicitly).
# Apache Kafka: KAFKA_BIN=/opt/kafka/bin ./create-topics.sh broker:9092
# Redpanda:     RPK=1 ./create-topics.sh broker:9092
set -euo pipefail
BOOTSTRAP=${1:?usage: create-topics.sh BOOTSTRAP [PREFIX] [PARTITIONS] [REPLICATION]}
PREFIX=${2:-cascade}
PARTITIONS=${3:-12}
REPLICATION=${4:-3}
RETENTION_MS=${RETENTION_MS:-21600000}
for topic in "$PREFIX.events.binance" "$PREFIX.events.bybit" "$PREFIX.risk" "$PREFIX.alerts" \
  "$PREFIX.alerts.deadletter"; do
  if [ "${RPK:-}" = 1 ]; then
    rpk topic create "$topic" -X brokers="$BOOTSTRAP" -p "$PARTITIONS" -r "$REPLICATION" \
      -c retention.ms="$RETENTION_MS"
  else
    "${KAFKA_BIN:-/opt/kafka/bin}/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create \
      --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
      --replication-factor "$REPLICATION" --config retention.ms="$RETENTION_MS"
  fi
done
