"""MQTT ingestion: station events applied in transactions, acked after commit."""
