//! The `iridium` binary: the shared resource service, producing iridium.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    resource::main(resource::Resource::Iridium).await
}
