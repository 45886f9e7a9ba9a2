"""Camera station: capture -> decode -> item tracking -> commission -> outbox -> MQTT uplink."""
