//! The `iridium` binary: the shared resource service, producing iridium.

// jemalloc, one arena: why, in platform::allocator.
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> std::process::ExitCode {
    resource::main(resource::Resource::Iridium).await
}
