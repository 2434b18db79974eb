"""MQTT → PostgreSQL ingest: subscription, payload decoders, validation, batching, rejects."""
