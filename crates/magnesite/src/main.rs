//! The `magnesite` binary: the shared resource service, producing magnesite.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    resource::main(resource::Resource::Magnesite).await
}
