"""The robots as MQTT devices: one paho client per robot (:mod:`~simulator.devices.agent`) fed by
the model's sink, all of a process driven by one network thread
(:mod:`~simulator.devices.net_loop`), and the ``factory simulate`` runner
(:mod:`~simulator.devices.run`)."""
