"""The SimPy factory model (pure) and the MQTT device agents."""
