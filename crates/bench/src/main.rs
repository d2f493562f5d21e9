//! The `bench` binary: parse the command line, run the benchmark, print it.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = bench::cli::Cli::parse();
    bench::run(cli).await?;
    Ok(())
}
