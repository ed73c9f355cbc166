"""The built-in web dashboard, Grafana provisioning and the Prometheus config."""

from __future__ import annotations

from pathlib import Path

#: The dashboard's static files: ``index.html``, ``css/``, ``js/`` and vendored ``vendor/``.
WEB_DIR = Path(__file__).resolve().parent / "web"
