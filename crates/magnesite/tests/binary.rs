//! The `magnesite` binary as a process: the missing-configuration exit, its
//! health check and SIGTERM exit as `docker stop` sends it, and its health
//! check when idle connections have taken every file descriptor.

use std::path::Path;
use testkit::process::{
    exits_with_one_line_naming, resource_binary_refuses_unsafe_configuration,
    resource_binary_serves_and_stops, resource_binary_sheds_idle_connections_out_of_descriptors,
    safe_aws_env,
};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_magnesite"))
}

#[tokio::test]
async fn missing_monolith_url_exits_with_one_line_naming_it() {
    exits_with_one_line_naming(exe(), &safe_aws_env(), &["monolithUrl", "MONOLITH_URL"]).await;
}

#[tokio::test]
async fn serves_its_health_check_and_exits_0_on_sigterm() {
    resource_binary_serves_and_stops(exe(), contracts::Resource::Magnesite).await;
}

#[tokio::test]
async fn refuses_to_start_without_hook_secret_or_with_sns_from_any_topic() {
    resource_binary_refuses_unsafe_configuration(exe()).await;
}

#[tokio::test]
async fn out_of_descriptors_idle_connections_make_room_for_the_health_check() {
    resource_binary_sheds_idle_connections_out_of_descriptors(exe(), contracts::Resource::Magnesite).await;
}
