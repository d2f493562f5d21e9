//! What the person at the terminal sees: where everything listens, a curl
//! to paste, a live status line, and the reconciliation at the end.

use crate::cli::Cli;
use crate::{Platform, launch};
use hq::feed::Topic;
use hq::ledger::Reconciliation;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// How often the status line is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Without a terminal, a status line is printed this often instead.
const STATUS_EVERY_PLAIN: Duration = Duration::from_secs(10);

/// The whole launcher after argument parsing; the exit code is 1 when the
/// reconciliation found lost or duplicated orders.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    // Warnings only by default: the services' per-order lines would bury the
    // status line. RUST_LOG=info shows them.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();

    let config = cli.config();
    println!("Starting Interstella (stage: {:?}) ...", config.stage);
    let mut platform = launch(config.clone()).await?;
    print_banner(&platform, &config);
    platform.feed().await;

    let terminal = std::io::stdout().is_terminal();
    let every = if terminal {
        STATUS_EVERY
    } else {
        STATUS_EVERY_PLAIN
    };
    let mut ticks = tokio::time::interval(every);
    let shutdown = platform::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => {
                let line = status_line(&platform).await;
                if terminal {
                    print!("\r\x1b[2K{line}");
                    let _ = std::io::stdout().flush();
                } else {
                    println!("{line}");
                }
            }
        }
    }
    println!(
        "\nStopping: no new orders; letting deliveries and retries finish (up to {:?}, Ctrl-C again to stop now) ...",
        cli.drain()
    );
    let drain = cli.drain();
    let reconciliation = tokio::select! {
        result = platform.shutdown(drain) => result?,
        () = platform::shutdown_signal() => {
            println!("Stopped without draining.");
            return Ok(1);
        }
    };
    print_reconciliation(&reconciliation);
    Ok(
        if reconciliation.totals.lost == 0 && reconciliation.totals.duplicated == 0 {
            0
        } else {
            1
        },
    )
}

fn print_banner(platform: &Platform, config: &crate::LaunchConfig) {
    let hq = platform.hq_url().as_str().trim_end_matches('/');
    let rates: Vec<String> = config
        .rates
        .iter()
        .filter(|(_, rate)| **rate > 0.0)
        .map(|(topic, rate)| format!("{topic} {rate}/s"))
        .collect();
    let strangled: Vec<&str> = config.stage.strangled().iter().map(|r| r.as_str()).collect();
    println!(
        "\nInterstella is running on this machine.\n\n\
         HQ (AWS side of the workshop)   {hq}/\n  \
         dashboard, portal (browser)    {hq}/dashboard  {hq}/  (sign in with HQ_ADMIN_TOKEN)\n  \
         fulfillment API                {hq}/receiving/\n  \
         key portal                     {hq}/keys\n  \
         SNS stand-in / topics          {hq}/topics  (AWS_ENDPOINT_URL_SNS={hq})\n  \
         totals, reconciliation         {hq}/totals  {hq}/reconciliation\n\
         monolith                       {monolith}  (orders topic -> /order/; strangled: {strangled})\n\
         iridium                        {iridium}  (iridium topic -> /iridium/)\n\
         magnesite                      {magnesite}  (magnesite topic -> /magnesite/)\n\n\
         Generating: {rates}\n\n\
         Try it:\n  \
         export HQ_ADMIN_TOKEN={admin}  # HQ's admin credential, kept in {admin_file}\n  \
         curl -H \"Authorization: Bearer $HQ_ADMIN_TOKEN\" -X POST -d '{{\"bundle\": 1}}' {hq}/topics/orders/publish\n  \
         curl -H 'Content-Type: application/json' -X POST -d '{{\"Message\":{{\"bundle\":\"1\"}}}}' {monolith}order/\n  \
         curl -H \"Authorization: Bearer $HQ_ADMIN_TOKEN\" {hq}/totals\n\n\
         Ctrl-C stops everything and prints the reconciliation.\n",
        // Shown once, to the person who started HQ; never logged.
        admin = platform.hq().admin_token().expose(),
        admin_file = config.data_dir.join(hq::admin::TOKEN_FILE).display(),
        monolith = platform.monolith.url("/"),
        iridium = platform.iridium.url("/iridium/"),
        magnesite = platform.magnesite.url("/magnesite/"),
        strangled = if strangled.is_empty() {
            "none".to_owned()
        } else {
            strangled.join(", ")
        },
        rates = if rates.is_empty() {
            "nothing".to_owned()
        } else {
            rates.join(", ")
        },
    );
}

/// One line: published, fulfilled, failed and retried per topic.
pub async fn status_line(platform: &Platform) -> String {
    let stats = platform.hq().feed().stats();
    let fulfilled = platform.hq().reconcile().await.ok();
    Topic::ALL
        .into_iter()
        .map(|topic| {
            let s = stats.get(&topic).copied().unwrap_or_default();
            let done = match &fulfilled {
                Some(r) => r
                    .topics
                    .get(topic.as_str())
                    .map_or(0, |t| t.fulfilled)
                    .to_string(),
                None => "?".into(),
            };
            format!(
                "{topic}: {} published, {done} fulfilled, {} failed, {} retried",
                s.published, s.failed, s.retried
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn print_reconciliation(r: &Reconciliation) {
    println!("\nReconciliation (orders published this run against fulfillments recorded):");
    println!(
        "  {:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>5} {:>10}",
        "topic", "published", "fulfilled", "rejected", "unrouted", "pending", "lost", "duplicated"
    );
    let total = &r.totals;
    for (topic, t) in &r.topics {
        println!(
            "  {:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>5} {:>10}",
            topic, t.published, t.fulfilled, t.rejected, t.unrouted, t.pending, t.lost, t.duplicated
        );
    }
    println!(
        "  {:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>5} {:>10}",
        "total",
        total.published,
        total.fulfilled,
        total.rejected,
        total.unrouted,
        total.pending,
        total.lost,
        total.duplicated
    );
    if total.lost == 0 && total.duplicated == 0 {
        println!("  Nothing lost, nothing counted twice.");
    } else {
        println!("  {} lost, {} duplicated.", total.lost, total.duplicated);
    }
}
