"""Write endpoints are rate-limited per API key: the bucket alone, then the real app."""

from __future__ import annotations

from pathlib import Path

from test_api_endpoints import settings_for
from test_api_maintenance import KEY, TestClient, seed

from api.app import create_app
from api.rate_limit import WriteLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_burst_through_then_the_rate() -> None:
    clock = Clock()
    limiter = WriteLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    wait_s = limiter.take("k")
    assert wait_s == 0.5
    assert retry_after(wait_s) == "1"
    assert limiter.take("other key") is None  # a bucket per key
    clock.now = 0.5
    assert limiter.take("k") is None
    assert limiter.take("k") is not None
    clock.now = 100.0  # refills up to the burst, no further
    assert [limiter.take("k") for _ in range(4)].count(None) == 3


def test_a_thousand_fault_injections_in_a_burst_are_mostly_refused(tmp_path: Path) -> None:
    seed(tmp_path / "f.db")
    settings = settings_for(tmp_path)
    with TestClient(create_app(settings)) as client:
        fault = {"fault": "overheat", "duration_s": 600.0}
        codes = [
            client.post("/api/robots/weld-01/faults", json=fault, headers=KEY).status_code
            for _ in range(1000)
        ]
        accepted = codes.count(202)
        assert codes.count(429) == 1000 - accepted
        # The burst, plus what the rate refilled while the loop ran (a busy machine: ≤ 60 s).
        assert settings.write_burst <= accepted < settings.write_burst + 60 * 5
        refused = client.post("/api/robots/weld-01/faults", json=fault, headers=KEY)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "FACTORY_WRITE_RATE_PER_S" in refused.json()["detail"]
        metrics = client.get("/metrics").text
        assert f'factory_commands_sent_total{{type="inject_fault"}} {accepted}.0' in metrics
        assert "factory_api_rate_limited_total" in metrics
        # Reads are never limited.
        assert all(client.get("/api/robots").status_code == 200 for _ in range(50))


def test_a_dashboard_user_never_meets_the_limit(tmp_path: Path) -> None:
    seed(tmp_path / "f.db")
    with TestClient(create_app(settings_for(tmp_path))) as client:
        fault = {"fault": "overheat", "duration_s": 600.0}
        codes = [
            client.post("/api/robots/weld-01/faults", json=fault, headers=KEY).status_code
            for _ in range(20)  # twenty clicks as fast as a person can, and faster
        ]
        assert codes == [202] * 20
