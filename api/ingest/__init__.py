"""MQTT in and out of the service: the paho client (:mod:`~api.ingest.mqtt_client`), the inbox
that hands messages to the event loop (:mod:`~api.ingest.inbox`), the parse → validate → dedupe
pipeline (:mod:`~api.ingest.pipeline`), the consumer task that stores and feeds the engine
(:mod:`~api.ingest.consumer`) and the command sender (:mod:`~api.maintenance.command_sender`)."""
