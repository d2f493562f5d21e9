//! The bodies the loads send: the workshop's curl, and a signed SNS delivery
//! exactly as SNS sends it; and what verifying a signature costs.

use crate::error::BenchError;
use contracts::Envelope;
use contracts::SignatureVersion;
use contracts::sns::CONTENT_TYPE;
use platform::sns::{SnsVerifier, TrustedHosts};
use std::time::Instant;
use testkit::fake_sns::{FakeSns, delivery_headers};

/// A request body with the headers it is sent with.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The body, sent as is.
    pub body: String,
    /// Headers, Content-Type included.
    pub headers: Vec<(String, String)>,
}

impl Delivery {
    /// The workshop's curl: `{"Message": ...}` as JSON, no `Type`.
    pub fn curl(message: &str) -> Self {
        Self {
            body: format!("{{\"Message\":{message}}}"),
            headers: vec![("Content-Type".into(), "application/json".into())],
        }
    }

    /// A Notification carrying `message` (a JSON string, as publishers send
    /// it) signed by `sns`, with SNS' headers and `text/plain`.
    /// SignatureVersion 1 is what SNS uses unless a topic asks for 2.
    pub fn sns(sns: &FakeSns, message: &str) -> Result<Self, BenchError> {
        let envelope = sns.notification(message, SignatureVersion::V1);
        let mut headers = vec![("Content-Type".to_owned(), CONTENT_TYPE.to_owned())];
        headers.extend(
            delivery_headers(&envelope)
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        );
        Ok(Self {
            body: serde_json::to_string(&envelope)?,
            headers,
        })
    }
}

/// CPU cost of verifying one SNS message, measured in-process with the
/// services' own verifier, certificate cached (as after the first delivery).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct VerifyCost {
    /// Microseconds per SignatureVersion 1 (SHA1withRSA) message.
    pub v1_us: f64,
    /// Microseconds per SignatureVersion 2 (SHA256withRSA) message.
    pub v2_us: f64,
}

/// Rounds of [`verify_cost`]'s messages per version; the quickest counts.
const VERIFY_ROUNDS: u32 = 5;

/// Measures [`VerifyCost`]: `iterations` messages per version, timed in
/// `VERIFY_ROUNDS` rounds of which the quickest counts, so that a moment
/// of other work on the machine (a service still exiting) is not counted
/// as the check's.
pub async fn verify_cost(sns: &FakeSns, iterations: u32) -> Result<VerifyCost, BenchError> {
    let client = platform::downstream::http_client(platform::downstream::DEFAULT_DOWNSTREAM_CONNECTIONS)?;
    let verifier = SnsVerifier::new(TrustedHosts::new(Some(sns.base.clone())), client);
    let mut micros = [f64::INFINITY; 2];
    for (slot, version) in [SignatureVersion::V1, SignatureVersion::V2]
        .into_iter()
        .enumerate()
    {
        let envelope: Envelope = sns.notification("{\"bundle\": 1}", version);
        // The first verification fetches the certificate; not timed.
        verifier.verify(&envelope).await?;
        for _ in 0..VERIFY_ROUNDS {
            let started = Instant::now();
            for _ in 0..iterations {
                verifier.verify(&envelope).await?;
            }
            let per_message = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations.max(1));
            micros[slot] = micros[slot].min(per_message);
        }
    }
    Ok(VerifyCost {
        v1_us: micros[0],
        v2_us: micros[1],
    })
}
