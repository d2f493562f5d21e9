//! Faults HQ can be told to inject into its fulfillment API, to watch the
//! platform recover: refusals before recording, and answers lost after
//! recording (the case idempotency keys exist for).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};

/// Faults still to inject; each counter is used up one request at a time.
#[derive(Debug, Default)]
pub struct Faults {
    fail: AtomicU32,
    lose: AtomicU32,
}

/// A request for faults, as `POST /faults` takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The next this-many fulfillments get 503 without being recorded.
    #[serde(default)]
    pub fail_fulfillments: u32,
    /// The next this-many fulfillments are recorded, then answered 503, as
    /// if the answer was lost on the way back.
    #[serde(default)]
    pub lose_responses: u32,
}

/// What to do with one fulfillment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refuse it with 503 before recording.
    Fail,
    /// Record it, then answer 503.
    LoseResponse,
}

impl Faults {
    /// Adds `plan` to the faults still to inject (a second plan adds to
    /// the first, up to `u32::MAX`, never wrapping to a few:
    /// [`Faults::clear`] disarms them).
    pub fn add(&self, plan: FaultPlan) {
        let add = |counter: &AtomicU32, more: u32| {
            // The closure always answers, so the update cannot fail.
            let _ = counter.try_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(more))
            });
        };
        add(&self.fail, plan.fail_fulfillments);
        add(&self.lose, plan.lose_responses);
    }

    /// Disarms every fault still to inject; what was left.
    pub fn clear(&self) -> FaultPlan {
        FaultPlan {
            fail_fulfillments: self.fail.swap(0, Ordering::SeqCst),
            lose_responses: self.lose.swap(0, Ordering::SeqCst),
        }
    }

    /// The faults still to inject.
    pub fn remaining(&self) -> FaultPlan {
        FaultPlan {
            fail_fulfillments: self.fail.load(Ordering::SeqCst),
            lose_responses: self.lose.load(Ordering::SeqCst),
        }
    }

    /// Takes the fault for the next request, if any is left.
    pub fn take(&self) -> Option<Fault> {
        let take = |counter: &AtomicU32| {
            counter
                .try_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if take(&self.fail) {
            Some(Fault::Fail)
        } else if take(&self.lose) {
            Some(Fault::LoseResponse)
        } else {
            None
        }
    }
}
