#!/usr/bin/env bash
# Create the per-exchange event topics on a real cluster (the services also create missing topics
# at start-up with the configured partitions and retention; run this to manage them explicitly).
# Apache Kafka: KAFKA_BIN=/opt/kafka/bin ./create-topics.sh broker:9092
# Redpanda:     RPK=1 ./create-topics.sh broker:9092
set -euo pipefail
BOOTSTRAP=${1:?usage: create-topics.sh BOOTSTRAP [PREFIX] [PARTITIONS] [REPLICATION]}
PREFIX=${2:-cascade}
PARTITIONS=${3:-12}
REPLICATION=${4:-3}
RETENTION_MS=${RETENTION_MS:-21600000}
for exchange in binance bybit; do
  topic="$PREFIX.events.$exchange"
  if [ "${RPK:-}" = 1 ]; then
    rpk topic create "$topic" -X brokers="$BOOTSTRAP" -p "$PARTITIONS" -r "$REPLICATION" \
      -c retention.ms="$RETENTION_MS"
  else
    "${KAFKA_BIN:-/opt/kafka/bin}/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create \
      --if-not-exists --topic "$topic" --partitions "$PARTITIONS" \
      --replication-factor "$REPLICATION" --config retention.ms="$RETENTION_MS"
  fi
done
