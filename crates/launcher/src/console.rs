//! What the person at the terminal sees: where everything listens, a curl
//! to paste, a live status block (see [`crate::status`]), and the
//! reconciliation at the end.

use crate::cli::Cli;
use crate::status::{Screen, Status, TopicStatus};
use crate::{LaunchError, Platform, Stage, launch};
use contracts::Resource;
use hq::feed::Topic;
use hq::ledger::{OrderCounts, Produced, Reconciliation};
use platform::startup::{StopSignals, stop_signals};
use platform::terminal::{say, show};
use std::io::IsTerminal;
use std::time::Duration;

/// How often the status block is redrawn.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Without a terminal, the status is appended this often instead.
const STATUS_EVERY_PLAIN: Duration = Duration::from_secs(10);

/// The whole launcher after argument parsing; the exit code is 1 when the
/// reconciliation is not clean (orders lost, refused, counted twice or
/// still pending) or a second Ctrl-C cut the drain short.
pub async fn run(cli: Cli) -> Result<i32, LaunchError> {
    // Warnings only by default: the services' per-order lines would bury the
    // status block. RUST_LOG=info shows them; a directive that does not
    // parse is named and left out, as the services do.
    let filter = platform::telemetry::log_filter_or(std::env::var("RUST_LOG").ok().as_deref(), "warn");
    // The status block is redrawn on a terminal; log lines then go above it.
    let terminal = std::io::stdout().is_terminal();
    let screen = Screen::terminal();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colour only for a person at a terminal, not into a redirected log.
        .with_ansi(std::io::stderr().is_terminal())
        // A line stderr cannot take is dropped: the builder's default reports
        // it with eprintln!, whose panic aborted the launcher (no drain, no
        // reconciliation) once stderr's reader had gone.
        .log_internal_errors(false);
    let _ = if terminal {
        logs.with_writer(screen.clone()).try_init()
    } else {
        logs.with_writer(std::io::stderr).try_init()
    };

    // The services' settings, which the launcher does not take: said, so
    // that nobody waits for JSON, a scrape or traces that will not come.
    // An endpoint's value is not shown: its URL may hold a password or a
    // token.
    for (setting, instead, shown) in [
        ("LOG_FORMAT", "the launcher's console is text", true),
        ("METRICS_PORT", "the launcher serves no metrics", true),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "the launcher exports no spans",
            false,
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "the launcher exports no spans",
            false,
        ),
    ] {
        let Ok(value) = std::env::var(setting) else {
            continue;
        };
        if value.trim().is_empty() || setting == "LOG_FORMAT" && value == "text" {
            continue;
        }
        if shown {
            let value = contracts::quote::quoted(&value);
            tracing::warn!("{setting}={value} is for a service run on its own (docker, ECS); {instead}");
        } else {
            tracing::warn!("{setting} is for a service run on its own (docker, ECS); {instead}");
        }
    }
    let config = cli.config();
    let stage = config.stage.name();
    // Before anything is said: a signal that came before the handlers were
    // installed killed the launcher outright, with no drain and no
    // reconciliation.
    let StopSignals { mut first, second } = stop_signals();
    say(format_args!("Starting Interstella (stage: {stage}) ..."));
    // Nothing is published before the feed starts, so a stop during the
    // launch (up to the subscriptions' confirmation deadline) has nothing
    // to drain: it ends there.
    let mut platform = tokio::select! {
        launched = launch(config.clone()) => launched?,
        () = &mut first => {
            say(format_args!("Stopped while starting: nothing was published."));
            return Ok(0);
        }
    };
    // Read from here on: a key pressed while starting is one nobody saw
    // the meaning of.
    let mut keys = crate::keys::Keys::read();
    print_banner(&platform, &config, keys.is_some());
    platform.feed().await;

    let every = if terminal {
        STATUS_EVERY
    } else {
        STATUS_EVERY_PLAIN
    };
    let mut ticks = tokio::time::interval(every);
    let say_above = |line: std::fmt::Arguments<'_>| {
        // A terminal that cannot be written to has nobody to tell.
        if terminal {
            let _ = screen.say(line);
        } else {
            say(line);
        }
    };
    loop {
        tokio::select! {
            () = &mut first => break,
            stage = crate::keys::next_stage(&mut keys) => {
                if platform.is_at(stage) {
                    say_above(format_args!("Already at stage {}.", stage.name()));
                    continue;
                }
                say_above(format_args!("{}", switching_to(stage)));
                match platform.switch_stage(stage).await {
                    Ok(()) => say_above(format_args!(
                        "{}",
                        switched_to(stage, platform.rates(), platform.rates_follow_stage())
                    )),
                    Err(error) => tracing::error!(
                        "the switch to stage {} failed: {error}; press {} to try again",
                        stage.name(),
                        stage.key()
                    ),
                }
                ticks.reset_immediately();
            }
            _ = ticks.tick() => {
                let mut status = status(&platform);
                status.keys = keys.as_ref().map(|_| crate::keys::named());
                if terminal && !crate::keys::in_front_of(std::io::stdout()) {
                    // Sent to the background (Ctrl-Z, `bg`): the shell has
                    // the terminal, and a block drawn over it would erase
                    // what is typed there. Drawn anew under it after `fg`.
                    screen.let_go();
                } else if terminal {
                    // A terminal that cannot be written to has nobody to show it to.
                    let _ = screen.draw(&status);
                } else {
                    // Appended, whole: a log file has no width. Nobody
                    // needs it once stdout's reader has gone.
                    show(format_args!("{}", status.lines(usize::MAX).join("\n")));
                }
            }
        }
    }
    // The terminal as it was, for the drain and whatever follows.
    drop(keys);
    screen.let_go();
    say(format_args!(
        "\nStopping: no new orders; letting deliveries and retries finish (up to {:?}, Ctrl-C again to stop now) ...",
        cli.drain()
    ));
    let drain = cli.drain();
    let reconciliation = tokio::select! {
        result = platform.shutdown(drain) => result?,
        () = second => {
            // No reconciliation: reading the whole run is what a second
            // Ctrl-C asks not to wait for. The ledger has the run.
            say(format_args!(
                "Stopped without draining or reconciling: deliveries under way were cut off. \
                 The next start on this data directory says how many of this run's orders never finished."
            ));
            return Ok(1);
        }
    };
    say(format_args!("{}", reconciliation_lines(&reconciliation)));
    Ok(if reconciliation.is_clean() { 0 } else { 1 })
}

/// The admin credential's file in `data_dir`, as a shell takes it from any
/// directory: absolute, and quoted when it needs to be (a space in it split
/// the banner's `$(cat ...)` in two).
fn token_file(data_dir: &std::path::Path) -> String {
    let file = data_dir.join(hq::admin::TOKEN_FILE);
    // HQ made the directory, so it resolves; if not, the path as given.
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let text = file.to_string_lossy();
    match shlex::try_quote(&text) {
        Ok(quoted) => quoted.into_owned(),
        // Only a NUL, which no path holds.
        Err(_) => text.into_owned(),
    }
}

/// The resources `stage` has strangled out of the monolith: `iridium,
/// magnesite`, or `none`.
fn strangled_names(stage: Stage) -> String {
    let strangled: Vec<&str> = stage.strangled().iter().map(|r| r.as_str()).collect();
    if strangled.is_empty() {
        "none".to_owned()
    } else {
        strangled.join(", ")
    }
}

/// The line said as a switch to `stage` begins. It and [`switched_to`]'s
/// fit 80 columns, as the block beside them does.
fn switching_to(stage: Stage) -> String {
    format!(
        "Switching to stage {}: a new monolith, strangled: {} ...",
        stage.name(),
        strangled_names(stage)
    )
}

/// The lines said once the platform is at `stage`: who produces what, and
/// what is generated at `rates` (given with `--rate` unless they follow the
/// stage).
fn switched_to(stage: Stage, rates: &std::collections::BTreeMap<Topic, f64>, follow_stage: bool) -> String {
    let kept = if follow_stage {
        ""
    } else {
        " (the --rate given, kept)"
    };
    format!(
        "Stage {}: {}.\nGenerating: {}{kept}",
        stage.name(),
        who_gathers(stage),
        rates_text(rates)
    )
}

/// Who produces each resource at `stage`, in a phrase.
fn who_gathers(stage: Stage) -> String {
    let strangled = stage.strangled();
    let (carved, kept): (Vec<&Resource>, Vec<&Resource>) = Resource::ALL
        .iter()
        .partition(|resource| strangled.contains(resource));
    let names = |resources: &[&Resource]| {
        resources
            .iter()
            .map(|resource| resource.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    match (carved.is_empty(), kept.is_empty()) {
        (true, _) => format!("the monolith gathers {}", names(&kept)),
        (false, true) => format!("{} from microservices; the monolith fulfills", names(&carved)),
        (false, false) => format!(
            "the monolith gathers {}; {} from its microservice",
            names(&kept),
            names(&carved)
        ),
    }
}

/// The rates generated, as the banner says them: `orders 0.5/s, iridium
/// 0.5/s`, or `nothing`.
fn rates_text(rates: &std::collections::BTreeMap<Topic, f64>) -> String {
    let rates: Vec<String> = rates
        .iter()
        .filter(|(_, rate)| **rate > 0.0)
        .map(|(topic, rate)| format!("{topic} {rate}/s"))
        .collect();
    if rates.is_empty() {
        "nothing".to_owned()
    } else {
        rates.join(", ")
    }
}

fn print_banner(platform: &Platform, config: &crate::LaunchConfig, keys: bool) {
    let hq = platform.hq_url().as_str().trim_end_matches('/');
    say(format_args!(
        "\nInterstella is running on this machine.\n\n\
         HQ (AWS side of the workshop)   {hq}/\n  \
         dashboard, portal (browser)    {dashboard}  {hq}/  (sign in with HQ_ADMIN_TOKEN)\n  \
         fulfillment API                {hq}/receiving/\n  \
         new API keys (POST, admin)     {hq}/keys\n  \
         SNS stand-in / topics          {hq}/topics  (AWS_ENDPOINT_URL_SNS={hq})\n  \
         totals, reconciliation         {hq}/totals  {hq}/reconciliation\n\
         monolith                       {monolith}  (orders topic -> /order/; strangled: {strangled})\n\
         {microservices}\n\
         Generating: {rates}\n\n\
         Try it:\n  \
         {admin_line}\n  \
         curl -H \"Authorization: Bearer $HQ_ADMIN_TOKEN\" -X POST -d '{{\"bundle\": 1}}' {hq}/topics/orders/publish\n  \
         curl -H 'Content-Type: application/json' -X POST -d '{{\"Message\":{{\"bundle\":\"1\"}}}}' {monolith}order/\n  \
         curl -H \"Authorization: Bearer $HQ_ADMIN_TOKEN\" {hq}/totals\n\n\
         {switch}\
         Ctrl-C stops everything and prints the reconciliation.\n",
        switch = if keys {
            format!(
                "Keys switch the stage as it runs, as the labs do: {} (the monolith is deployed again).\n",
                crate::keys::each_named()
            )
        } else {
            String::new()
        },
        admin_line = match config.admin_token {
            // Theirs already: not written out again, into scrollback or a
            // `| tee run.log`.
            Some(_) => format!(
                "# HQ's admin credential is the one you gave (not shown); the curls read it from ${}",
                hq::admin::TOKEN_ENV
            ),
            // Shown once, to the person at the terminal; never logged.
            None if std::io::stdout().is_terminal() => format!(
                "export {}={}  # HQ's admin credential, kept in {}",
                hq::admin::TOKEN_ENV,
                platform.hq().admin_token().expose(),
                token_file(&config.data_dir)
            ),
            // Into a pipe or a file (`| tee run.log`): where it is, not what.
            None => format!(
                "export {}=$(cat {})  # HQ's admin credential",
                hq::admin::TOKEN_ENV,
                token_file(&config.data_dir)
            ),
        },
        dashboard = dashboard_url(platform),
        monolith = platform.monolith.url("/"),
        microservices = microservice_lines(platform),
        strangled = strangled_names(config.stage),
        rates = rates_text(&config.rates),
    ));
}

/// A line per microservice for the banner: its URL and the topic it takes.
fn microservice_lines(platform: &Platform) -> String {
    platform
        .microservices
        .iter()
        .map(|(resource, service)| {
            let path = contracts::paths::resource(*resource);
            let url = service.url(&path);
            format!("{:<31}{url}  ({resource} topic -> {path})\n", resource.as_str())
        })
        .collect()
}

/// Where HQ's live dashboard is, under HQ's base URL.
pub fn dashboard_url(platform: &Platform) -> String {
    let mut url = platform.hq_url().clone();
    url.set_path(hq::portal::DASHBOARD_PATH);
    url.to_string()
}

/// The status now: per topic, published, fulfilled, failed, retried and in
/// flight, all from the feed's counters at one moment, so that a row adds
/// up (with one subscription per topic, as the launcher makes them: the
/// deliveries are counted, an order's to each subscription). (Fulfilled
/// from the ledger's reconciliation, which is reused for a second or more,
/// lagged the live counters beside it: a row often showed an order neither
/// fulfilled, failed nor in flight.)
pub fn status(platform: &Platform) -> Status {
    let stats = platform.hq().feed().stats();
    let topics = Topic::ALL
        .iter()
        .copied()
        .map(|topic| {
            let s = stats.get(&topic).copied().unwrap_or_default();
            TopicStatus {
                topic: topic.as_str(),
                published: s.published,
                fulfilled: s.delivered,
                // A refusal (4xx) ends a delivery as surely as a failure.
                failed: s.failed + s.rejected,
                retried: s.retried,
                in_flight: s.in_flight,
                unrouted: s.unrouted,
            }
        })
        .collect();
    Status {
        stage: platform.stage().name(),
        keys: None,
        dashboard: dashboard_url(platform),
        topics,
    }
}

/// The reconciliation as the person who pressed Ctrl-C reads it: a table
/// per topic and a verdict.
fn reconciliation_lines(r: &Reconciliation) -> String {
    // The header and every row in the same columns.
    let row = |cells: [&dyn std::fmt::Display; 8]| {
        let [
            topic,
            published,
            fulfilled,
            rejected,
            unrouted,
            pending,
            lost,
            duplicated,
        ] = cells;
        format!(
            "  {topic:<10} {published:>9} {fulfilled:>9} {rejected:>8} {unrouted:>8} {pending:>8} {lost:>5} {duplicated:>10}\n"
        )
    };
    let counts = |topic: &str, t: &OrderCounts| {
        row([
            &topic,
            &t.published,
            &t.fulfilled,
            &t.rejected,
            &t.unrouted,
            &t.pending,
            &t.lost,
            &t.duplicated,
        ])
    };
    let mut text =
        String::from("\nReconciliation (orders published this run against fulfillments recorded):\n");
    text.push_str(&row([
        &"topic",
        &"published",
        &"fulfilled",
        &"rejected",
        &"unrouted",
        &"pending",
        &"lost",
        &"duplicated",
    ]));
    // In the live block's order (orders first), then any topic it lacks.
    let listed = Topic::ALL
        .iter()
        .filter_map(|&topic| r.topics.get_key_value(topic.as_str()));
    let others = r
        .topics
        .iter()
        .filter(|(name, _)| Topic::ALL.iter().all(|&topic| topic.as_str() != name.as_str()));
    for (topic, t) in listed.chain(others) {
        text.push_str(&counts(topic, t));
    }
    let total = &r.totals;
    text.push_str(&counts("total", total));
    if let Some(produced) = &r.produced {
        text.push_str(&produced_lines(produced));
    }
    if r.is_clean() && total.unrouted > 0 {
        // Nobody lost them, but nobody had them: say so rather than bury it.
        text.push_str(&format!(
            "  Nothing lost, nothing counted twice; {} published while nothing was subscribed (unrouted).",
            total.unrouted
        ));
    } else if r.is_clean() {
        text.push_str("  Nothing lost, nothing counted twice.");
    } else {
        // Pending here means still being retried when HQ stopped: its
        // retries stop with it.
        text.push_str(&format!(
            "  {} lost, {} rejected, {} duplicated, {} still pending when HQ stopped.",
            total.lost, total.rejected, total.duplicated, total.pending
        ));
        // Where to start looking: each id is the order_id of its log lines.
        text.push_str("\n  The first of them (each the order_id of its log lines):");
        for order in &r.unaccounted {
            text.push_str(&format!(
                "\n    {:<10} {:<10} {}",
                order.outcome, order.topic, order.message_id
            ));
        }
    }
    text
}

/// Who produced the resources this run's orders were fulfilled with: the
/// stage's strangling, in numbers (nothing when nothing was produced).
fn produced_lines(produced: &Produced) -> String {
    let rows: Vec<String> = Resource::ALL
        .iter()
        .map(|&resource| (resource, produced.resource(resource)))
        .filter(|(_, sources)| sources.monolith + sources.microservice + sources.unattributed > 0)
        .map(|(resource, sources)| {
            let unattributed = match sources.unattributed {
                0 => String::new(),
                units => format!(", {units} unattributed"),
            };
            format!(
                "    {:<10} {:>9} gathered by the monolith, {} from the {resource} microservice{unattributed}\n",
                resource.as_str(),
                sources.monolith,
                sources.microservice,
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!("  Units produced for them:\n{}", rows.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hq::ledger::{Unaccounted, UnaccountedOutcome};

    /// A reconciliation that is not clean names where to start looking.
    #[test]
    fn an_unclean_reconciliation_names_its_first_orders_unaccounted_for() {
        let lost = OrderCounts {
            published: 2,
            fulfilled: 1,
            lost: 1,
            ..OrderCounts::default()
        };
        let reconciliation = Reconciliation {
            totals: lost,
            topics: [("orders".to_owned(), lost)].into(),
            unaccounted: vec![Unaccounted {
                message_id: "9d6c1b6a-0000-4000-8000-000000000001".to_owned(),
                topic: "orders".to_owned(),
                outcome: UnaccountedOutcome::Lost,
            }],
            produced: None,
        };
        let text = reconciliation_lines(&reconciliation);
        assert!(
            text.contains("1 lost, 0 rejected, 0 duplicated, 0 still pending"),
            "{text}"
        );
        assert!(
            text.contains("\n    lost       orders     9d6c1b6a-0000-4000-8000-000000000001"),
            "{text}"
        );
        assert!(!reconciliation_lines(&Reconciliation::default()).contains("The first of them"));
    }

    /// The table's topics come in the live block's order, orders first,
    /// not the ledger's alphabetical one.
    #[test]
    fn the_reconciliation_lists_topics_as_the_live_block_does() {
        let one = OrderCounts {
            published: 1,
            fulfilled: 1,
            ..OrderCounts::default()
        };
        let reconciliation = Reconciliation {
            totals: one,
            topics: ["iridium", "magnesite", "orders", "gold"]
                .map(|topic| (topic.to_owned(), one))
                .into(),
            unaccounted: Vec::new(),
            produced: None,
        };
        let text = reconciliation_lines(&reconciliation);
        let rows: Vec<&str> = text
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|word| ["orders", "iridium", "magnesite", "gold", "total"].contains(word))
            .collect();
        assert_eq!(
            rows,
            ["orders", "iridium", "magnesite", "gold", "total"],
            "{text}"
        );
    }

    /// Orders nobody was subscribed to are not lost, but the verdict says so.
    #[test]
    fn a_clean_reconciliation_says_how_many_orders_reached_nobody() {
        let unrouted = OrderCounts {
            published: 24,
            fulfilled: 12,
            unrouted: 12,
            ..OrderCounts::default()
        };
        let reconciliation = Reconciliation {
            totals: unrouted,
            topics: [("orders".to_owned(), unrouted)].into(),
            unaccounted: Vec::new(),
            produced: None,
        };
        let text = reconciliation_lines(&reconciliation);
        assert!(
            text.ends_with(
                "Nothing lost, nothing counted twice; 12 published while nothing was subscribed (unrouted)."
            ),
            "{text}"
        );
    }

    /// What a switch says fits the 80 columns the block is drawn for, at
    /// every stage, and says when the rates are the ones given.
    #[test]
    fn a_switchs_lines_fit_80_columns_and_say_given_rates_are_kept() {
        let rates = Stage::Both.default_rates();
        for &stage in <Stage as clap::ValueEnum>::value_variants() {
            let said = [switching_to(stage), switched_to(stage, &rates, true)].join("\n");
            for line in said.lines() {
                assert!(line.len() < 80, "{} columns: {line}", line.len());
            }
        }
        assert_eq!(
            switched_to(Stage::Iridium, &Stage::Iridium.default_rates(), true),
            "Stage iridium: the monolith gathers magnesite; iridium from its microservice.\n\
             Generating: orders 0.5/s, iridium 0.5/s"
        );
        assert!(
            switched_to(Stage::Both, &Stage::Monolith.default_rates(), false)
                .ends_with("Generating: orders 0.5/s (the --rate given, kept)")
        );
    }

    /// The end of a run says who produced what: the monolith gathering, or
    /// a microservice; a resource nobody produced is left out.
    #[test]
    fn the_reconciliation_says_who_produced_each_resource() {
        let mut reconciliation = Reconciliation::default();
        assert!(!reconciliation_lines(&reconciliation).contains("Units produced"));
        reconciliation.produced = Some(Produced::default());
        assert!(!reconciliation_lines(&reconciliation).contains("Units produced"));
        let produced = reconciliation.produced.as_mut().unwrap();
        produced.iridium.monolith = 12;
        produced.iridium.microservice = 57;
        produced.iridium.unattributed = 2;
        let text = reconciliation_lines(&reconciliation);
        assert!(
            text.contains(
                "\n  Units produced for them:\n    iridium           12 gathered by the monolith, 57 from the iridium microservice, 2 unattributed\n  Nothing lost"
            ),
            "{text}"
        );
    }
}
