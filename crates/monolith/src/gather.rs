//! Gathering a bundle's resources, as the monolith still does for those not
//! yet strangled out of it.

use contracts::{FulfillmentRequest, Producer, Quantity, Resource};
use std::collections::BTreeSet;
use std::time::Duration;

/// Gathers `bundle` of each resource not in `strangled`, concurrently, each
/// taking `delay` of simulated work; strangled resources count 0. What it
/// gathers is the monolith's own work (`produced_by: monolith`).
pub async fn gather(bundle: Quantity, strangled: &BTreeSet<Resource>, delay: Duration) -> FulfillmentRequest {
    tracing::info!("Gathering Requested Items");
    let get = |resource: Resource| async move {
        if strangled.contains(&resource) {
            return 0;
        }
        tracing::info!("Getting {}", resource.title());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        bundle
    };
    let (iridium, magnesite) = tokio::join!(get(Resource::Iridium), get(Resource::Magnesite));
    FulfillmentRequest {
        iridium,
        magnesite,
        produced_by: Some(Producer::Monolith),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn strangled_resources_count_zero() {
        let all = gather(2, &BTreeSet::new(), Duration::ZERO).await;
        assert_eq!(
            all,
            FulfillmentRequest {
                iridium: 2,
                magnesite: 2,
                produced_by: Some(Producer::Monolith),
            }
        );
        let no_iridium = gather(2, &BTreeSet::from([Resource::Iridium]), Duration::ZERO).await;
        assert_eq!(
            no_iridium,
            FulfillmentRequest {
                iridium: 0,
                magnesite: 2,
                produced_by: Some(Producer::Monolith),
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn resources_are_gathered_concurrently() {
        let started = Instant::now();
        let tokio_started = tokio::time::Instant::now();
        gather(1, &BTreeSet::new(), Duration::from_secs(1)).await;
        // Paused clock: two sequential sleeps would advance it by 2 s.
        assert_eq!(tokio_started.elapsed(), Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
