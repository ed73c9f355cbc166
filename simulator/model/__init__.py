"""The pure SimPy factory: robots that work a shift calendar, wear, fail and get maintained.

It knows nothing of MQTT: robots emit readings and events through a callable sink and receive
commands through a plain method (:class:`~simulator.model.factory.Factory`). Only the entry point
chooses ``simpy.rt.RealtimeEnvironment`` or ``simpy.Environment``; model code never sleeps.
"""
