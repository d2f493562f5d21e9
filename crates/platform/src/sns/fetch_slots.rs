//! The few certificate fetches a verifier makes at once, and who gets the
//! next one.
//!
//! `SigningCertURL` is not signed, so a flood of forged messages, each
//! naming a certificate of its own, can keep every slot busy with fetches
//! that fail. Were the slots handed out first come, first served, a genuine
//! message whose certificate is not cached (a new task, the hour's refetch)
//! would queue behind the flood until its time ran out, and SNS drops a
//! message after a few refusals. So a freed slot goes, in order:
//!
//! 1. to a certificate that verified a message before (its hourly refetch);
//! 2. to the certificate the most messages are waiting for: SNS signs every
//!    message of a region with one certificate, while each forgery names
//!    its own;
//! 3. to whoever has waited longest.
//!
//! What is left: a genuine message, alone, for a certificate never seen
//! yet, still waits with the flood, and a forger who names one certificate
//! in many messages at once outbids it (docs/contract.md, Trust).

use std::sync::{Arc, Mutex, PoisonError, Weak};
use tokio::sync::oneshot;

/// The fetch slots: at most `size` held at once.
pub(crate) struct FetchSlots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    waiting: Vec<Waiting>,
    /// The next waiter's place in line.
    next_place: u64,
}

/// One fetch waiting for a slot.
struct Waiting {
    /// The URL verified a message before.
    known_good: bool,
    /// What the messages waiting on the fetch hold: how many hold it is how
    /// many are waiting.
    demand: Weak<()>,
    place: u64,
    grant: oneshot::Sender<()>,
}

impl Waiting {
    /// Who goes first: known good, then most wanted, then first in line.
    fn precedence(&self) -> (bool, usize, std::cmp::Reverse<u64>) {
        (
            self.known_good,
            self.demand.strong_count(),
            std::cmp::Reverse(self.place),
        )
    }
}

/// A held slot, given back when dropped.
pub(crate) struct FetchSlot(Arc<FetchSlots>);

impl Drop for FetchSlot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A waiter's end of its grant: a slot granted just as the waiter gave up
/// is given back, not lost.
struct Pending {
    slots: Arc<FetchSlots>,
    granted: oneshot::Receiver<()>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Closed first: a grant sent from now on fails and goes to the next
        // waiter; one sent before is here to give back. (Read without
        // closing, a grant sent between the read and the drop was lost.)
        self.granted.close();
        if self.granted.try_recv().is_ok() {
            self.slots.release();
        }
    }
}

impl FetchSlots {
    /// `size` slots, all free.
    pub(crate) fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: size,
                waiting: Vec::new(),
                next_place: 0,
            }),
        })
    }

    /// A slot, once one is free and this fetch goes first. `demand` is held
    /// by every message waiting on the fetch; `known_good` says its URL
    /// verified a message before.
    pub(crate) async fn acquire(self: &Arc<Self>, demand: &Arc<()>, known_good: bool) -> FetchSlot {
        let granted = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return FetchSlot(Arc::clone(self));
            }
            let (grant, granted) = oneshot::channel();
            let place = state.next_place;
            state.next_place += 1;
            state.waiting.push(Waiting {
                known_good,
                demand: Arc::downgrade(demand),
                place,
                grant,
            });
            granted
        };
        let mut pending = Pending {
            slots: Arc::clone(self),
            granted,
        };
        // A sender is dropped unsent only by `release` finding this waiter
        // gone, which it is not: the error cannot happen. Received, the
        // grant is spent, and dropping `pending` gives nothing back.
        let _ = (&mut pending.granted).await;
        FetchSlot(Arc::clone(self))
    }

    /// Hands a freed slot to the fetch that goes first, or keeps it free.
    fn release(&self) {
        let mut state = self.lock();
        // Waiters that gave up are gone from the line.
        state.waiting.retain(|waiting| !waiting.grant.is_closed());
        while let Some(first) = state
            .waiting
            .iter()
            .enumerate()
            .max_by_key(|(_, waiting)| waiting.precedence())
            .map(|(index, _)| index)
        {
            let waiting = state.waiting.swap_remove(first);
            if waiting.grant.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a panic is a failed test
mod tests {
    use super::*;
    use std::time::Duration;

    /// Lets every spawned task run until it waits (the tests' runtime has
    /// one thread: nothing runs but at these points).
    async fn settle() {
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
    }

    /// Whether the waiter has its slot; the slot stays held.
    async fn granted(waiter: &tokio::task::JoinHandle<FetchSlot>) -> bool {
        settle().await;
        waiter.is_finished()
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_known_then_the_most_wanted_then_the_first() {
        let slots = FetchSlots::new(1);
        let held = slots.acquire(&Arc::new(()), false).await;
        let wait = |demand: &Arc<()>, known_good| {
            let (slots, demand) = (Arc::clone(&slots), Arc::clone(demand));
            tokio::spawn(async move { slots.acquire(&demand, known_good).await })
        };
        let (first, wanted, known) = (Arc::new(()), Arc::new(()), Arc::new(()));
        let first_in_line = wait(&first, false);
        settle().await;
        // Three messages wait for this one.
        let also_wanted = [Arc::clone(&wanted), Arc::clone(&wanted)];
        let most_wanted = wait(&wanted, false);
        settle().await;
        let known_good = wait(&known, true);
        settle().await;
        // As wanted as the first in line, but later.
        let later = Arc::new(());
        let later_in_line = wait(&later, false);
        // Every waiter is in line before the slot frees.
        settle().await;
        drop(held);
        assert!(granted(&known_good).await);
        assert!(!granted(&most_wanted).await && !granted(&first_in_line).await);
        drop(known_good.await.unwrap());
        assert!(granted(&most_wanted).await);
        assert!(!granted(&first_in_line).await);
        drop(most_wanted.await.unwrap());
        drop(also_wanted);
        assert!(granted(&first_in_line).await);
        assert!(!granted(&later_in_line).await);
        drop(first_in_line.await.unwrap());
        assert!(granted(&later_in_line).await);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_takes_no_slot_with_it() {
        let slots = FetchSlots::new(1);
        let held = slots.acquire(&Arc::new(()), false).await;
        let demand = Arc::new(());
        let gave_up = tokio::time::timeout(Duration::from_millis(10), slots.acquire(&demand, false)).await;
        assert!(gave_up.is_err());
        drop(held);
        // The slot is free again, not handed to the waiter that left.
        let again = tokio::time::timeout(Duration::from_millis(50), slots.acquire(&demand, false)).await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn a_slot_granted_just_as_its_waiter_gives_up_is_given_back() {
        let slots = FetchSlots::new(1);
        let held = slots.acquire(&Arc::new(()), false).await;
        let demand = Arc::new(());
        let waiter = {
            let (slots, demand) = (Arc::clone(&slots), Arc::clone(&demand));
            tokio::spawn(async move { slots.acquire(&demand, false).await })
        };
        settle().await;
        // The slot goes to the waiter, which gives up before it runs again.
        drop(held);
        waiter.abort();
        assert!(waiter.await.is_err_and(|error| error.is_cancelled()));
        let again = tokio::time::timeout(Duration::from_millis(50), slots.acquire(&demand, false)).await;
        assert!(again.is_ok(), "the slot left with the waiter that gave up");
    }
}
