"""The service: MQTT ingest, storage, live endpoints, and the maintenance engine."""
