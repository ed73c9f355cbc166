#!/bin/sh
# One-shot setup of the docker-compose stack: its `init` service runs this before anything else
# starts (installed in the image as /usr/local/bin/factory-init).
#
# Safe on every start. Credentials are made on first start and kept in
# FACTORY_STATE_DIR/credentials.json (random, mode 0600, in a named volume; nothing in the repo).
# The broker's password file and ACL are rewritten from them each time, so robots new in the
# scenario get a password and no existing password changes. The Grafana admin password is made
# once (or taken from GRAFANA_ADMIN_PASSWORD on first start).
#
# tests/test_compose_parity.py runs this script natively with the compose environment.
set -eu

: "${FACTORY_STATE_DIR:?set FACTORY_STATE_DIR to the state directory (the factory-state volume)}"
: "${MOSQUITTO_CONFIG_DIR:?set MOSQUITTO_CONFIG_DIR to the broker config directory (volume)}"
: "${GRAFANA_ADMIN_DIR:?set GRAFANA_ADMIN_DIR to the Grafana admin secret directory (volume)}"
scenario="${FACTORY_SCENARIO:-default}"

# Broker users and ACL for the scenario's robots, the security profile (FACTORY_SECURITY:
# open, password or acl) and FACTORY_PARTICIPANTS logins p01..; mosquitto.conf as committed.
factory broker --state-dir "$FACTORY_STATE_DIR" --scenario "$scenario" \
    --security "${FACTORY_SECURITY:-acl}" --participants "${FACTORY_PARTICIPANTS:-0}" \
    --write-config "$MOSQUITTO_CONFIG_DIR"

password_file="$GRAFANA_ADMIN_DIR/password"
if [ ! -s "$password_file" ]; then
    # Grafana runs as another user (uid 472) and must read this file; only Grafana and this
    # service mount its volume.
    umask 022
    if [ -n "${GRAFANA_ADMIN_PASSWORD:-}" ]; then
        printf '%s\n' "$GRAFANA_ADMIN_PASSWORD" > "$password_file.tmp"
    else
        python -c 'import secrets; print(secrets.token_urlsafe(18))' > "$password_file.tmp"
    fi
    mv "$password_file.tmp" "$password_file"
    echo "made the Grafana admin password; read it with:" \
        "docker compose exec grafana cat $password_file"
fi
echo "init done: credentials in $FACTORY_STATE_DIR, broker files in $MOSQUITTO_CONFIG_DIR"
