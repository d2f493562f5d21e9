//! The `magnesite` binary: the shared resource service, producing magnesite.

// jemalloc, one arena: why, in platform::allocator.
platform::use_jemalloc!();

#[tokio::main]
async fn main() -> std::process::ExitCode {
    resource::main(resource::Resource::Magnesite).await
}
