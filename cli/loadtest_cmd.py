"""botctl loadtest: open-model load against a running webhook, thresholds, DB verification."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from cli.common import ConfigOption, DbOption, QuietOption, check_choice, config


def loadtest(
    url: Annotated[str, typer.Option("--url", help="Webhook URL, e.g. http://127.0.0.1:8000/webhook")],
    rate: Annotated[float, typer.Option("--rate", help="Deliveries per second (open model).")] = 50.0,
    duration: Annotated[float, typer.Option("--duration", help="Measured seconds.")] = 60.0,
    warmup: Annotated[float, typer.Option("--warmup", help="Seconds sent before measuring.")] = 0.0,
    dup_ratio: Annotated[float, typer.Option("--dup-ratio", help="Share of deliveries redelivered "
                                             "(half concurrently, half later).")] = 0.0,
    burst: Annotated[int, typer.Option("--burst", help="N messages released together.")] = 0,
    burst_mode: Annotated[str, typer.Option("--burst-mode", help="same-phone | same-id")] = "same-phone",
    threshold: Annotated[Optional[list[str]], typer.Option(
        "--threshold", help="k6-style, repeatable: 'p(95)<2000', 'errors==0', 'rate>=45'.")] = None,
    summary: Annotated[Optional[str], typer.Option("--summary", help="Write the JSON summary here.")] = None,
    html: Annotated[Optional[str], typer.Option("--html", help="Write a self-contained HTML report here "
                                                "(charts, thresholds, --verify results).")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check DB invariants after the run (--db).")] = False,
    telemetry: Annotated[Optional[str], typer.Option("--telemetry", help="Server telemetry JSONL, "
                                                     "to count optimistic-lock retries.")] = None,
    shorten: Annotated[Optional[float], typer.Option(
        "--shorten", help="Scale duration and warmup by this factor (CI); recorded in the summary.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Per-request timeout, seconds.")] = 10.0,
    max_redeliveries: Annotated[int, typer.Option("--max-redeliveries")] = 5,
    connections: Annotated[int, typer.Option("--connections")] = 256,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    db: DbOption = None, config_path: ConfigOption = None, quiet: QuietOption = False,
) -> None:
    """Open-model load of whole report conversations; exit 0 when every threshold passed (and
    --verify found nothing), 1 when one did not, 2 on bad usage.

    The conversations report on refrigerator 4001234, one of the demo Equipos (`serve --demo`).
    """
    from bot_core.secrets import resolve_secrets
    from bot_core.errors import ConfigError
    from cli.output import Console, to_json
    from ops.loadtest.runner import LoadtestOptions, run_loadtest, stderr_progress
    from ops.loadtest.thresholds import parse_threshold
    from ops.loadtest.traffic import TrafficSpec

    console = Console(quiet)
    check_choice("--burst-mode", burst_mode, ("same-phone", "same-id"))
    if rate <= 0 or duration <= 0 or warmup < 0 or not 0 <= dup_ratio <= 1 or burst < 0:
        raise ConfigError("--rate and --duration must be > 0, --warmup >= 0, --dup-ratio within 0..1, --burst >= 0")
    if shorten is not None and not 0 < shorten <= 1:
        raise ConfigError("--shorten must be within (0, 1]")
    thresholds = [parse_threshold(t) for t in threshold or []]
    if html:
        from ops.report_html import check_writable

        check_writable(html)
    cfg = config(config_path, db=db)
    secret, _ = resolve_secrets(cfg, "127.0.0.1")
    database = None
    if verify:
        from bot_core.storage import database_from_config

        database = database_from_config(cfg)
    factor = shorten or 1.0
    spec = TrafficSpec(rate=rate, duration_s=duration * factor, warmup_s=warmup * factor, dup_ratio=dup_ratio,
                       burst=burst, burst_mode=burst_mode, seed=seed)
    options = LoadtestOptions(url, secret, spec, timeout_s=timeout, max_redeliveries=max_redeliveries,
                              connections=connections, thresholds=thresholds, shorten=shorten,
                              progress=stderr_progress if console.shows_progress else None)
    console.info(f"loadtest {url}: {rate:g}/s for {spec.duration_s:g}s (+{spec.warmup_s:g}s warmup)")
    result, plan = run_loadtest(options)
    if console.shows_progress:
        console.info("")
    if database is not None:
        from ops.loadtest.verify import verify_run

        result["verify"] = verify_run(database, plan, spec.run_id, telemetry_path=telemetry)
    text = to_json(result)
    if summary:
        with open(summary, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    typer.echo(text)
    if html:
        from ops.loadtest.report import render_html
        from ops.report_html import write

        write(html, render_html(result))
    failed = [t["expression"] for t in result["thresholds"] if not t["passed"]]
    if result["verify"] is not None and not result["verify"]["ok"]:
        failed += result["verify"]["violations"]
    lat = result["latency_ms"]
    console.info(f"{result['requests']} requests at {result['rate_achieved']}/s, p50 {lat['p50']} ms, "
                 f"p95 {lat['p95']} ms, p99 {lat['p99']} ms, errors {result['errors']}, dropped {result['dropped']}")
    for item in failed:
        console.error(f"failed: {item}")
    raise typer.Exit(1 if failed else 0)
