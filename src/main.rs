//! `cargo run --release`: the whole Interstella platform on this machine.

use clap::Parser;

// jemalloc, one arena: why, in platform::allocator.
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let code = launcher::console::run(launcher::cli::Cli::parse()).await?;
    std::process::exit(code);
}
