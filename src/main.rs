//! `cargo run --release`: the whole Interstella platform on this machine.

use clap::CommandFactory;
use std::process::ExitCode;

// The system allocator, not the services' jemalloc: see platform::allocator.

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match platform::startup::settings(
        "interstella",
        launcher::cli::Cli::command(),
        &launcher::cli::BLANK_REFUSED,
    ) {
        Ok(cli) => cli,
        Err(refused) => return refused,
    };
    match launcher::console::run(cli).await {
        Ok(code) => std::process::exit(code),
        // One line: each error's text already holds its cause's.
        Err(error) => {
            platform::terminal::say_on_stderr(format_args!("interstella: {error}"));
            ExitCode::FAILURE
        }
    }
}
