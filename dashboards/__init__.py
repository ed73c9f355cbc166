"""The built-in web dashboard, Grafana provisioning and the Prometheus config."""
