"""Data manipulation (ISO 13374 block 2): despiking, smoothing and stuck-sensor detection.

Each raw value first goes through a running median of the last three values, which removes an
isolated spike completely (one wild value is never the middle of three), then through an
exponentially weighted moving average (EWMA) that averages the noise. A sensor that repeats the
exact same float several times in a row is stuck (real, noisy sensors never do); its values are
ignored until it changes again. All of it is plain Python on a few floats: this runs for every
reading, millions of times in an experiment.
"""

from __future__ import annotations


def median3(a: float, b: float, c: float) -> float:
    """The middle one of three values."""
    if a > b:
        a, b = b, a
    if c >= b:
        return b
    return c if c > a else a


class Smoother:
    """Median-of-three, then EWMA; ``level`` is the smoothed value, ``stuck`` flags a frozen
    sensor. :meth:`push` returns the despiked value, or ``None`` while the sensor is stuck."""

    __slots__ = ("alpha", "count", "last", "level", "prev", "repeats", "stuck", "stuck_after")

    def __init__(self, alpha: float, stuck_after: int) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"EWMA alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.stuck_after = max(2, stuck_after)
        self.reset()

    def reset(self) -> None:
        """Forget everything (a sensor or component was replaced)."""
        self.count = 0
        self.prev = 0.0
        self.last = 0.0
        self.level = 0.0
        self.repeats = 0
        self.stuck = False

    def push(self, x: float) -> float | None:
        count = self.count
        if count and x == self.last:
            self.repeats += 1
            if self.repeats >= self.stuck_after - 1:
                self.stuck = True
                return None
        else:
            self.repeats = 0
            self.stuck = False
        if count == 0:
            # The first value seeds the window; the average restarts from the first full window's
            # median, so a spike among the first three values never enters it.
            self.prev = self.last = self.level = x
            self.count = 1
            return x
        # median3(prev, last, x), inlined: this runs for every value of every reading
        a, b = self.prev, self.last
        if a > b:
            a, b = b, a
        m = b if x >= b else (x if x > a else a)
        if count == 2:  # the first full window: restart the average from its median
            self.level = m
        else:
            self.level += self.alpha * (m - self.level)
        self.prev = self.last
        self.last = x
        self.count = count + 1
        return m
