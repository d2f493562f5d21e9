//! The loads the benchmark measures, as a type: the report finds the runs
//! it holds to a target by scenario, never by matching their names.

use serde::ser::SerializeStruct;

/// The slow-gather load lasts at least this long: each order takes 1 s.
const SLOW_LOAD_SECONDS: u64 = 5;

/// One kind of load: what is sent, where, and along which route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The workshop's curl body, a bundle, to the monolith.
    BundleCurl,
    /// A bundle in a signed SNS Notification, to the monolith.
    BundleSns,
    /// The workshop's curl body, iridium, to the iridium service, which
    /// calls the monolith's glue hook.
    IridiumCurl,
    /// The workshop's curl body, a bundle, to the 2-hop floor (a minimal
    /// forwarder, see [`crate::floor`]): what the monolith is held against.
    FloorCurl,
    /// Bundles to a monolith that takes 1 s per gathered resource, with
    /// 1,000 orders in flight.
    BundleSlowGather,
}

impl Scenario {
    /// Its name in the tables and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::BundleCurl => "bundle, curl body",
            Self::BundleSns => "bundle, signed SNS body",
            Self::IridiumCurl => "iridium, curl body",
            Self::FloorCurl => "bundle, curl body, 2-hop floor",
            Self::BundleSlowGather => "bundle, curl body, 1 s gather",
        }
    }

    /// The path an order takes.
    pub fn route(self) -> &'static str {
        match self {
            Self::BundleCurl | Self::BundleSns => "client → monolith → API",
            Self::IridiumCurl => "client → iridium → monolith → API",
            Self::FloorCurl => "client → floor → API",
            Self::BundleSlowGather => "client → monolith (1 s) → API",
        }
    }

    /// Whether the load is run once unmeasured first. The slow load is not:
    /// each of its orders takes a second anyway, and a warm-up would leave
    /// 1,000 orders in flight into the measured window.
    pub fn warms_up(self) -> bool {
        self != Self::BundleSlowGather
    }

    /// The shortest the measured load may be, whatever `--duration` says.
    pub fn min_seconds(self) -> u64 {
        match self {
            Self::BundleSlowGather => SLOW_LOAD_SECONDS,
            Self::BundleCurl | Self::BundleSns | Self::IridiumCurl | Self::FloorCurl => 1,
        }
    }
}

/// Written as its `name` and `route`, the fields a run is read by.
impl serde::Serialize for Scenario {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("Scenario", 2)?;
        fields.serialize_field("name", self.name())?;
        fields.serialize_field("route", self.route())?;
        fields.end()
    }
}
