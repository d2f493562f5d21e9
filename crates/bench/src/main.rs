//! The `bench` binary: parse the command line, run the benchmark, print it.
//! Started again with `--serve-floor`, it is the 2-hop floor the monolith is
//! measured against (see `bench::floor`).

use clap::Parser;

platform::use_jemalloc!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(bench::floor::SERVE_FLAG) {
        bench::floor::serve_from_env().await?;
        return Ok(());
    }
    let cli = bench::cli::Cli::parse();
    bench::run(cli).await?;
    Ok(())
}
