//! `cargo run --release`: the whole Interstella platform on this machine.

use clap::Parser;

// The system allocator, not the services' jemalloc: see platform::allocator.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let code = launcher::console::run(launcher::cli::Cli::parse()).await?;
    std::process::exit(code);
}
