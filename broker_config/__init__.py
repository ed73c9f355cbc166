"""Mosquitto and amqtt configuration, credentials and ACL generation, the embedded broker."""
