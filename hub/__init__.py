"""The Yima hub: code database, MQTT ingestion, verification, shipping and admin APIs."""
