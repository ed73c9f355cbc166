# The smart-factory image: the `factory` command (service, simulator, broker tooling) in a virtual
# environment, run as a non-root user. No compilers, test tools or sources in the final image.
# docker-compose.yml builds it for its init, api and simulator services; see docs/compose.md.
#
#   docker build -t smart-factory .
#   docker run --rm smart-factory --help

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtual environment with the project and its runtime dependencies --------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/factory
WORKDIR /src
# Dependencies first, read from pyproject.toml alone, so this layer is rebuilt only when they
# change, not on every code edit. Every dependency ships wheels: no compiler is needed.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > requirements.txt \
 && /opt/factory/bin/pip install -r requirements.txt
# Then the project itself (no test extras), as a regular (non-editable) install.
COPY README.md ./
COPY contract ./contract
COPY plant ./plant
COPY simulator ./simulator
COPY engine ./engine
COPY experiment ./experiment
COPY api ./api
COPY broker_config ./broker_config
COPY dashboards ./dashboards
COPY factory ./factory
RUN /opt/factory/bin/pip install --no-deps . \
 && /opt/factory/bin/factory --help > /dev/null

# --- runtime -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
COPY --from=build /opt/factory /opt/factory
COPY docker/init.sh /usr/local/bin/factory-init
COPY docker/mqtt_connected.py /usr/local/bin/factory-mqtt-connected
# uid/gid 1883 on purpose: the official eclipse-mosquitto image runs its broker as user
# "mosquitto" = 1883:1883. The broker's password file, which the compose `init` service writes
# with mode 0600, is then owned by the very user that reads it (Mosquitto 2 opens it only after
# dropping root). The directories are the mount points of the compose volumes: a new named
# volume takes the owner of the directory it is first mounted on, so the volumes are ours.
RUN groupadd --system --gid 1883 factory \
 && useradd --system --uid 1883 --gid factory --create-home --home-dir /home/factory \
        --shell /usr/sbin/nologin factory \
 && install -d -o factory -g factory -m 0700 /var/lib/factory \
 && install -d -o factory -g factory -m 0755 /var/lib/mosquitto-config /var/lib/grafana-admin \
 && chmod 0755 /usr/local/bin/factory-init /usr/local/bin/factory-mqtt-connected
ENV PATH=/opt/factory/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FACTORY_STATE_DIR=/var/lib/factory
USER factory
WORKDIR /home/factory
EXPOSE 8000
# For the default command (the service); docker-compose.yml sets its own per service.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["factory"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
