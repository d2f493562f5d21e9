//! Where each service takes what the contracts carry: the paths are part of
//! the wire format (SNS subscriptions, the ALB's rules, the glue hook's URL
//! and the fulfillment API's are written against them), so each is spelled
//! once, here.

use crate::Resource;

/// The monolith's bundle orders (the orders topic's deliveries).
pub const ORDER: &str = "/order/";

/// The monolith's glue hook, which the microservices call.
pub const FULFILL: &str = "/fulfill/";

/// The fulfillment API (Interstella HQ's `/receiving/`).
pub const RECEIVING: &str = "/receiving/";

/// A resource's microservice: its orders and its topic's deliveries, at
/// `/<resource>/` as in the workshop.
pub fn resource(resource: Resource) -> String {
    format!("/{resource}/")
}

/// `path` without its trailing slash: routes are matched after the path is
/// normalised so (`/order` and `/order/` are one route).
pub fn route(path: &str) -> &str {
    path.strip_suffix('/').unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_workshops() {
        assert_eq!(
            [ORDER, FULFILL, RECEIVING].map(route),
            ["/order", "/fulfill", "/receiving"]
        );
        assert_eq!(resource(Resource::Iridium), "/iridium/");
        assert_eq!(route(&resource(Resource::Magnesite)), "/magnesite");
    }
}
