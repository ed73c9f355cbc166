"""The ``factory`` command: one entry point for the demo, its parts and its tools.

Each subcommand parses its options here and hands over to the module that owns the work; imports
happen inside the commands so ``factory --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="factory",
    help="A simulated smart factory that speaks real IIoT (MQTT robots, FastAPI service).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_STATE_DIR = Path(".factory")

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        help="Where credentials, the database and broker data live.",
        envvar="FACTORY_STATE_DIR",
    ),
]
ScenarioOpt = Annotated[
    str | None,
    typer.Option(
        "--scenario",
        help="Scenario TOML file, or the name of a bundled scenario.",
        envvar="FACTORY_SCENARIO",
    ),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Random seed: same seed, same run.", envvar="FACTORY_SEED")
]
BrokerOpt = Annotated[
    str | None,
    typer.Option("--broker", help="Use this broker, e.g. mqtt://127.0.0.1:1883."),
]

RobotsOpt = Annotated[
    int | None,
    typer.Option(
        help="Scale the scenario's fleet to N robots (ids and lines made the same way by "
        "simulate, broker, serve and up: weld-01-c1 on line-1-c1, …).",
        envvar="FACTORY_ROBOTS",
    ),
]

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLite database file (default: STATE_DIR/factory.db), or a PostgreSQL URL "
        "(postgresql://USER@HOST:PORT/DB) that several `factory serve` workers share.",
    ),
]

CafileOpt = Annotated[
    Path | None,
    typer.Option(
        "--cafile",
        help="CA file that verifies an mqtts:// broker (default: STATE_DIR/tls/ca.pem if it "
        "exists, else the system's CAs).",
        envvar="FACTORY_MQTT_CAFILE",
    ),
]
ProcessesOpt = Annotated[
    int | None,
    typer.Option(
        "--processes",
        help="Run the robots as P worker processes, each a shard of whole lines (default: one "
        "per 500 robots, at most one per core and per line: 1 for the 12-robot default).",
        envvar="FACTORY_PROCESSES",
    ),
]
BrokerUrlOpt = Annotated[
    str,
    typer.Option(
        "--broker", help="Broker URL, e.g. mqtt://127.0.0.1:1883.", envvar="FACTORY_BROKER_URL"
    ),
]


def _scaled(scenario: str | None, robots: int | None) -> str | None:
    """The scenario reference with ``--robots N`` applied (``default?robots=N``)."""
    from plant.fleet_size import FleetSizeError, with_robots

    try:
        return with_robots(scenario, robots)
    except FleetSizeError as exc:
        _fail(str(exc))
        raise


SecurityOpt = Annotated[
    str,
    typer.Option(
        "--security",
        help="open | password | acl | tls: who may connect and do what (docs/broker.md).",
        envvar="FACTORY_SECURITY",
    ),
]
ParticipantsOpt = Annotated[
    int | None,
    typer.Option(
        "--participants",
        help="Make logins p01..pNN for a workshop (passwords printed once).",
        envvar="FACTORY_PARTICIPANTS",
    ),
]
BindOpt = Annotated[
    str | None,
    typer.Option(
        "--bind",
        help="Interface to listen on; 0.0.0.0 lets the room connect (default: 127.0.0.1).",
        envvar="FACTORY_BROKER_BIND",
    ),
]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def up(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    scenario: ScenarioOpt = None,
    robots: RobotsOpt = None,
    seed: SeedOpt = 1,
    factor: Annotated[
        float | None,
        typer.Option(help="Real-time factor (default: the scenario's).", envvar="FACTORY_FACTOR"),
    ] = None,
    mqtt_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the embedded broker (default: 1883, 8883 on tls, or the next free one)."
        ),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(help="Port of the dashboard and API (default: 8000, or the next free one)."),
    ] = None,
    broker: BrokerOpt = None,
    db: DbOpt = None,
    security: SecurityOpt = "acl",
    participants: ParticipantsOpt = None,
    bind: BindOpt = None,
    workshop: Annotated[
        bool,
        typer.Option(
            help="Teach with it: 60× (a simulated minute per second), logins p01..p20 and the "
            "LAN (unless --participants/--bind say otherwise), the packet log for the protocol "
            "inspector, and the join address printed."
        ),
    ] = False,
    processes: ProcessesOpt = None,
) -> None:
    """Run the whole demo: embedded broker, simulated robots and the service with its dashboard."""
    scenario = _scaled(scenario, robots)
    from factory.up import DEFAULT_BIND, WORKSHOP_BIND, WORKSHOP_PARTICIPANTS, run_up

    run_up(
        state_dir=state_dir,
        scenario=scenario,
        seed=seed,
        factor=factor,
        mqtt_port=mqtt_port,
        http_port=http_port,
        broker=broker,
        db=db,
        security=security,
        # A workshop is a room: the LAN, and logins for the participants, unless told otherwise.
        participants=WORKSHOP_PARTICIPANTS if participants is None and workshop else participants,
        bind=bind or (WORKSHOP_BIND if workshop else DEFAULT_BIND),
        workshop=workshop,
        processes=processes,
    )


@app.command()
def simulate(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    scenario: ScenarioOpt = None,
    robots: RobotsOpt = None,
    seed: SeedOpt = 1,
    factor: Annotated[
        float | None,
        typer.Option(
            help="Real-time factor; 0 runs as fast as possible (default: scenario's).",
            envvar="FACTORY_FACTOR",
        ),
    ] = None,
    broker: BrokerUrlOpt = "mqtt://127.0.0.1:1883",
    duration: Annotated[
        str | None,
        typer.Option(
            help="Simulated duration, e.g. 90s, 30m, 12h, 7d (default: run until Ctrl-C)."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="Simulated start, ISO 8601 UTC (default: the scenario's start)."),
    ] = None,
    resume_from: Annotated[
        str | None,
        typer.Option(
            help="Service URL (e.g. http://127.0.0.1:8000): continue after its newest data. "
            "An https:// service is verified with --cafile (default: STATE_DIR/tls/ca.pem).",
            envvar="FACTORY_RESUME_FROM",
        ),
    ] = None,
    cafile: CafileOpt = None,
    flow_window: Annotated[
        int,
        typer.Option(
            min=0,
            help="Flow control: at most this many messages made and not yet stored by the "
            "service (it reports on factory/{site}/ingest) before the robots wait; 0: off.",
        ),
    ] = 20_000,
    processes: ProcessesOpt = None,
) -> None:
    """Run the simulated robots as MQTT devices against a broker."""
    scenario = _scaled(scenario, robots)
    from simulator.devices.run import run_simulate

    run_simulate(
        state_dir=state_dir,
        scenario=scenario,
        seed=seed,
        factor=factor,
        broker=broker,
        duration=duration,
        start=start,
        resume_from=resume_from,
        cafile=None if cafile is None else str(cafile),
        flow_window=flow_window,
        processes=processes,
    )


@app.command()
def serve(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    scenario: ScenarioOpt = None,
    robots: RobotsOpt = None,
    broker: BrokerUrlOpt = "mqtt://127.0.0.1:1883",
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
    worker: Annotated[
        str | None,
        typer.Option(
            help="Run as ingest worker NAME next to others on the same --db postgresql://…: "
            "telemetry is shared out ($share/ingest/…), one worker leads the maintenance engine."
        ),
    ] = None,
    tls: Annotated[
        bool,
        typer.Option(
            "--tls", help="Serve HTTPS with STATE_DIR/tls/server.pem and server.key (local CA)."
        ),
    ] = False,
) -> None:
    """Run the service: MQTT ingest, storage, live endpoints, maintenance engine, dashboard.

    An mqtts:// --broker is verified with FACTORY_MQTT_CAFILE, else STATE_DIR/tls/ca.pem."""
    scenario = _scaled(scenario, robots)
    from api.serve import run_serve

    run_serve(
        state_dir=state_dir,
        scenario=scenario,
        broker=broker,
        db=db,
        host=host,
        port=port,
        worker=worker,
        tls=tls,
    )


@app.command()
def broker(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    scenario: ScenarioOpt = None,
    robots: RobotsOpt = None,
    port: Annotated[
        int | None,
        typer.Option(help="MQTT port (default: 1883, 8883 on tls, or the next free one)."),
    ] = None,
    ws_port: Annotated[
        int | None, typer.Option(help="WebSocket port for browser clients (wss:// on tls).")
    ] = None,
    impl: Annotated[
        str,
        typer.Option(
            help="auto (Mosquitto if on PATH, else amqtt), mosquitto, amqtt, or nats (a NATS "
            "JetStream cluster with MQTT listeners on ephemeral ports; see --cluster)."
        ),
    ] = "auto",
    write_config: Annotated[
        Path | None,
        typer.Option(help="Only write password, ACL and config files for the scenario to DIR."),
    ] = None,
    cluster: Annotated[int, typer.Option(help="Nodes of the NATS cluster (--impl nats).")] = 3,
    security: SecurityOpt = "acl",
    participants: ParticipantsOpt = None,
    bind: BindOpt = None,
) -> None:
    """Run a local MQTT broker with the project's security model (or just write its config)."""
    scenario = _scaled(scenario, robots)
    from broker_config.command import run_broker

    if impl == "nats":
        from broker_config.nats_cluster import run_nats_broker

        run_nats_broker(state_dir=state_dir, scenario=scenario, nodes=cluster)
        return

    run_broker(
        state_dir=state_dir,
        scenario=scenario,
        port=port,
        ws_port=ws_port,
        impl=impl,
        write_config=write_config,
        security=security,
        participants=participants,
        bind=bind,
    )


@app.command()
def credentials(
    who: Annotated[
        str, typer.Argument(help="A robot id, 'service', 'instructor' or a participant (p07).")
    ],
    state_dir: StateDir = DEFAULT_STATE_DIR,
) -> None:
    """Print the MQTT username and password of a robot, the service, instructor or participant."""
    from broker_config.credentials import print_credentials
    from factory.robot_clock import robot_now_ts

    print_credentials(who=who, state_dir=state_dir, clock=robot_now_ts)


@app.command()
def ca(state_dir: StateDir = DEFAULT_STATE_DIR) -> None:
    """Print the local CA certificate's path (profile tls) and how to connect with it."""
    from broker_config.tls import print_ca

    print_ca(state_dir)


@app.command()
def tap(
    topic_filter: Annotated[str, typer.Argument(help="MQTT topic filter.")] = "factory/#",
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="Broker URL (default: the broker running from --state-dir, "
            "else mqtt://127.0.0.1:1883).",
        ),
    ] = None,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    username: Annotated[
        str | None, typer.Option(help="Username (default: anonymous, read-only).")
    ] = None,
    password: Annotated[str | None, typer.Option(help="Password for --username.")] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many messages.")] = None,
    raw: Annotated[bool, typer.Option(help="Print payloads as received, one per line.")] = False,
    cafile: CafileOpt = None,
) -> None:
    """Watch the wire: print every message with topic, QoS, retained flag and decoded payload."""
    from broker_config.layout import read_running
    from factory.tap import run_tap

    if broker is None:
        running = read_running(state_dir)
        broker = running.url if running is not None else "mqtt://127.0.0.1:1883"
    run_tap(
        topic_filter=topic_filter,
        broker=broker,
        username=username,
        password=password,
        count=count,
        raw=raw,
        cafile=None if cafile is None else str(cafile),
        state_dir=state_dir,
    )


@app.command()
def experiment(
    scenario: ScenarioOpt = None,
    policies: Annotated[
        str, typer.Option(help="Comma-separated: reactive, preventive, predictive.")
    ] = "reactive,preventive,predictive",
    seeds: Annotated[int, typer.Option(help="Number of seeds (1..N).")] = 10,
    days: Annotated[float, typer.Option(help="Simulated days per run.")] = 90.0,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("experiment-out"),
    jobs: Annotated[int, typer.Option(help="Parallel worker processes (0 = one per core).")] = 0,
    export: Annotated[
        Path | None,
        typer.Option(help="Also write every run's dataset (Parquet) here; see docs/dataset.md."),
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="With --export: CSV files too.")] = False,
) -> None:
    """Compare maintenance policies on the same seeded factory, offline and as fast as possible."""
    from experiment import run_experiment_cli

    run_experiment_cli(
        scenario=scenario,
        policies=policies,
        seeds=seeds,
        days=days,
        out=out,
        jobs=jobs,
        export=export,
        export_csv=csv,
    )


@app.command()
def export(
    db: Annotated[Path, typer.Option(help="The service's SQLite database file.")],
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("dataset"),
    csv: Annotated[bool, typer.Option("--csv", help="CSV files too.")] = False,
) -> None:
    """Export telemetry with its ground truth, events and work orders (docs/dataset.md)."""
    from experiment.cli import run_export_cli

    run_export_cli(db=db, out=out, csv=csv)


@app.command()
def contract(
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the AsyncAPI/JSON Schema document.")
    ] = False,
) -> None:
    """Show the M2M contract: topics, channels, QoS, and (with --schema) every payload schema."""
    from contract.cli import print_contract

    print_contract(schema=schema)


def main() -> None:
    from factory.signals import stop_on_signals

    stop_on_signals()  # also when started with SIGINT ignored (a script's background job)
    app()


if __name__ == "__main__":
    main()
