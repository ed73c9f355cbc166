"""The maintenance engine inside the live service: the loop that feeds it from ingest and acts
over MQTT (:mod:`~api.maintenance.loop`), the records the API shows
(:mod:`~api.maintenance.records`), what changed since the last plan
(:mod:`~api.maintenance.changes`) and its Prometheus figures (:mod:`~api.maintenance.metrics`)."""
