"""The robots as MQTT devices: one paho client per robot (:mod:`~simulator.devices.agent`) fed by
the model's sink, and the ``factory simulate`` runner (:mod:`~simulator.devices.run`)."""
