"""botctl loadtest: open-model load against a running webhook, thresholds, DB verification."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, check_choice, choices, config

BURST_MODES = ("same-phone", "same-id")
LOADTEST_OUTPUTS = ("text", "json")


def loadtest(
    url: Annotated[str, typer.Option("--url", help="Webhook URL, e.g. http://127.0.0.1:8000/webhook")],
    rate: Annotated[float, typer.Option("--rate", help="Deliveries per second (open model).")] = 50.0,
    duration: Annotated[float, typer.Option("--duration", help="Measured seconds.")] = 60.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Seconds sent before measuring.")] = 0.0,
    dup_ratio: Annotated[float, typer.Option("--dup-ratio", help="Share of deliveries redelivered "
                                             "(half concurrently, half later).")] = 0.0,
    burst: Annotated[int, typer.Option("--burst", help="N messages released together.")] = 0,
    bsuid_share: Annotated[float, typer.Option(
        "--bsuid-share", help="Share of conversations from users without a phone number (BSUID only).")] = 0.0,
    burst_mode: Annotated[str, typer.Option(
        "--burst-mode", **choices(BURST_MODES),
        help="same-phone: N messages of one user; same-id: one message delivered N times.")] = "same-phone",
    threshold: Annotated[Optional[list[str]], typer.Option(
        "--threshold", help="k6-style, repeatable: 'p(95)<2000', 'errors==0', 'rate>=45'.")] = None,
    output: Annotated[str, typer.Option(
        "--output", "-o", **choices(LOADTEST_OUTPUTS),
        help="text: the summary on stderr only; json: also the JSON summary on stdout.")] = "text",
    summary: Annotated[Optional[str], typer.Option("--summary", metavar="FILE",
                                                   help="Write the JSON summary to this file.")] = None,
    html: Annotated[Optional[str], typer.Option("--html", help="Write a self-contained HTML report here "
                                                "(charts, thresholds, --verify results).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the database invariants after the run "
                                         "(needs --db: the server's database).")] = False,
    equipment: Annotated[Optional[str], typer.Option(
        "--equipment", metavar="SAP_CODE", help="Active Equipo (refrigerator SAP code) the conversations report "
                                                "on. (default: 4001234, which `serve --demo` seeds)",
        show_default=False)] = None,
    telemetry: Annotated[Optional[str], typer.Option("--telemetry", help="Server telemetry JSONL, "
                                                     "to count optimistic-lock retries.")] = None,
    shorten: Annotated[Optional[float], typer.Option(
        "--shorten", help="Scale duration and warmup by this factor (CI); recorded in the summary.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-request timeout, seconds.")] = 10.0,
    max_redeliveries: Annotated[int, typer.Option(
        "--max-redeliveries", help="Redeliveries of a delivery answered 5xx or not at all, as Meta retries "
                                   "(exponential backoff).")] = 5,
    connections: Annotated[int, typer.Option("--connections", help="Most keep-alive connections open at once.")
                           ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the traffic (duplicates, their timing); "
                                      "the same seed sends the same plan.")] = 1,
    db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False,
) -> None:
    """Load-test a running webhook with whole report conversations (open model), k6-style.

    Prints a summary on stderr (each threshold with its measured value); the JSON summary with
    -o json or --summary. Exit 0 when every threshold passed and --verify found nothing, 1 when one
    did not or nothing was acknowledged, 2 on bad usage or when no server answers at --url.
    """
    from bot_core.secrets import resolve_secrets
    from bot_core.errors import ConfigError
    from cli.output import Console, to_json
    from ops.loadtest import summary as human
    from ops.loadtest.runner import LoadtestOptions, check_reachable, run_loadtest, stderr_progress
    from ops.loadtest.thresholds import parse_threshold
    from ops.loadtest.traffic import DEFAULT_EQUIPMENT, TrafficSpec

    console = Console(quiet)
    equipment = equipment or DEFAULT_EQUIPMENT
    check_choice("--burst-mode", burst_mode, BURST_MODES)
    check_choice("--output", output, LOADTEST_OUTPUTS)
    if not 0 <= bsuid_share <= 1:
        raise ConfigError("--bsuid-share must be within 0..1")
    if rate <= 0 or duration <= 0 or warmup < 0 or not 0 <= dup_ratio <= 1 or burst < 0:
        raise ConfigError("--rate and --duration must be > 0, --warmup >= 0, --dup-ratio within 0..1, --burst >= 0")
    if shorten is not None and not 0 < shorten <= 1:
        raise ConfigError("--shorten must be within (0, 1]")
    if max_redeliveries < 0 or connections < 1 or timeout <= 0:
        raise ConfigError("--max-redeliveries must be >= 0, --connections >= 1 and --timeout > 0")
    thresholds = [parse_threshold(t) for t in threshold or []]
    if html:
        from ops.report_html import check_writable

        check_writable(html)
    if verify and db is None:
        raise ConfigError("--verify reads the server's database: name it with --db URL")
    cfg = config(config_path, db=db)
    secret, _ = resolve_secrets(cfg, "127.0.0.1")
    database = None
    if verify:
        from bot_core.storage import database_from_config
        from ops.loadtest.verify import equipment_missing

        database = database_from_config(cfg, must_exist=True)
        if equipment_missing(database, equipment):
            console.warn(_NO_EQUIPMENT.format(equipment=equipment))
    check_reachable(url, timeout)
    factor = shorten or 1.0
    spec = TrafficSpec(rate=rate, duration_s=duration * factor, warmup_s=warmup * factor, dup_ratio=dup_ratio,
                       burst=burst, burst_mode=burst_mode, seed=seed, equipment=equipment,
                       bsuid_share=bsuid_share)
    options = LoadtestOptions(url, secret, spec, timeout_s=timeout, max_redeliveries=max_redeliveries,
                              connections=connections, thresholds=thresholds, shorten=shorten,
                              progress=stderr_progress if console.shows_progress else None)
    console.info(f"loadtest {url}: {rate:g}/s for {spec.duration_s:g}s (+{spec.warmup_s:g}s warmup)")
    result, plan = run_loadtest(options)
    if console.shows_progress:
        console.info("")
    if database is not None:
        from ops.loadtest.verify import equipment_missing, verify_run

        result["verify"] = verify_run(database, plan, spec.run_id, telemetry_path=telemetry)
        if not result["verify"]["reports"] and equipment_missing(database, equipment):
            result["verify"]["violations"].append(_NO_EQUIPMENT.format(equipment=equipment))
            result["verify"]["ok"] = False
    text = to_json(result)
    if summary:
        with open(summary, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if output == "json":
        typer.echo(text)
    if html:
        from ops.loadtest.report import render_html
        from ops.report_html import write

        write(html, render_html(result))
    console.info(human.render(result))
    failed = human.failures(result)
    for item in failed:
        console.error(f"failed: {item}")
    raise typer.Exit(1 if failed else 0)


_NO_EQUIPMENT = ("the database has no active Equipo {equipment}, which every conversation reports on, so no "
                 "report can be created: seed the demo Equipos (`botctl serve --demo`) or pass --equipment CODE")
