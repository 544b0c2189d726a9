//! Calls in flight: the service's slots, and each team's share of them. Without a share, one
//! team (one WebSocket holding a thousand streams, say) could take every slot and leave every
//! other team answered `overloaded` until it let go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, ErrorKind};

/// The slots of the calls in flight.
pub struct InFlight {
    service: Arc<Semaphore>,
    limit: usize,
    per_team: usize,
    /// One share per team that has called; as many as the teams in the database.
    teams: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A call's hold on its slots, given back when the call ends.
pub struct Slot {
    _service: OwnedSemaphorePermit,
    _team: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    pub fn new(limit: usize, per_team: usize) -> Self {
        Self {
            service: Arc::new(Semaphore::new(limit)),
            limit,
            per_team,
            teams: Mutex::default(),
        }
    }

    /// A slot of the service's, and of `team`'s share (by its id and name), or `overloaded` at
    /// once: nothing waits for a slot.
    pub fn take(&self, team: Option<(&str, &str)>) -> Result<Slot, Error> {
        let Ok(service) = Arc::clone(&self.service).try_acquire_owned() else {
            let message = format!(
                "the service is at its limit of {} calls in flight; retry later",
                self.limit
            );
            return Err(Error::new(ErrorKind::Overloaded, message));
        };
        let team = match team {
            None => None,
            Some((id, name)) => {
                let share = {
                    let mut teams = self.teams.lock().unwrap_or_else(|e| e.into_inner());
                    match teams.get(id) {
                        Some(share) => Arc::clone(share),
                        None => {
                            let share = Arc::new(Semaphore::new(self.per_team));
                            teams.insert(id.to_owned(), Arc::clone(&share));
                            share
                        }
                    }
                };
                let Ok(permit) = share.try_acquire_owned() else {
                    let message = format!(
                        "team {name:?} is at its limit of {} calls in flight \
                         (LLMRPC_MAX_IN_FLIGHT_PER_TEAM); retry later",
                        self.per_team
                    );
                    return Err(Error::new(ErrorKind::Overloaded, message));
                };
                Some(permit)
            }
        };
        Ok(Slot {
            _service: service,
            _team: team,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_takes_its_share_and_leaves_the_rest_to_others() {
        let slots = InFlight::new(3, 2);
        let a = [
            slots.take(Some(("t1", "one"))),
            slots.take(Some(("t1", "one"))),
        ];
        assert!(a.iter().all(Result::is_ok));
        let refused = slots.take(Some(("t1", "one"))).err().unwrap();
        assert_eq!(refused.kind, ErrorKind::Overloaded);
        assert!(
            refused.message.contains("team \"one\""),
            "{}",
            refused.message
        );
        let other = slots.take(Some(("t2", "two")));
        assert!(other.is_ok());
        let full = slots.take(None).err().unwrap();
        assert!(full.message.contains("limit of 3"), "{}", full.message);
        drop(a);
        assert!(slots.take(Some(("t1", "one"))).is_ok());
    }
}
