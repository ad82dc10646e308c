//! Who a run has sent to its set, and what Alma's set says now: the journal records the IDs of
//! every add_members call before it is made and Alma's answer after it ([`Send`]); the set's
//! members list is the word on who may be in it. An ID Alma took and that is no longer in the set
//! was taken out in Alma (Manage Sets) by staff: it is never added again and gets no letter.

use std::collections::HashSet;

use crate::journal::{Send, SendOutcome};

/// The run's sends sorted against the set's members as they are now (lower-cased IDs).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sorted {
    /// IDs of calls Alma applied (answered 200, or without an answer but with some of their IDs
    /// in the set): never sent again.
    pub applied: HashSet<String>,
    /// IDs of calls Alma took whole (its count grew by the call's size) that are no longer in the
    /// set: taken out by staff.
    pub taken_out: Vec<String>,
    /// Calls without an answer whose IDs are none of them in the set: Alma did not apply them,
    /// and their IDs are sent again.
    pub not_applied: Vec<usize>,
}

/// Sorts `sends` (oldest first) against `present`, the set's members now (lower-cased).
///
/// A call Alma answered took every ID it knows; whether it took them all is told by the set's
/// count in its answer against the one before (the previous answered call's, 0 before the first:
/// the run made the set empty). A call that took them all and whose IDs are missing now lost
/// them to staff; a call that took fewer (Alma skips IDs it does not know) leaves its missing IDs
/// to the refused count, as before. A call without an answer was applied when any of its IDs is
/// in the set; if none is, it was not (staff taking out a whole call's IDs between a lost answer
/// and a resume is not told apart from Alma never getting it: those IDs are sent again).
pub fn sort(sends: &[Send], present: &HashSet<String>) -> Sorted {
    let mut sorted = Sorted::default();
    // The count after the last answered call, while no call without an answer came since.
    let mut before = Some(0usize);
    for send in sends {
        let ids: Vec<String> = send.ids.iter().map(|i| i.to_lowercase()).collect();
        match send.outcome {
            SendOutcome::Refused => {}
            SendOutcome::Accepted => {
                let whole = match (before, send.members_after) {
                    (Some(b), Some(after)) => after.checked_sub(b) == Some(ids.len()),
                    _ => false,
                };
                if whole {
                    sorted
                        .taken_out
                        .extend(ids.iter().filter(|i| !present.contains(*i)).cloned());
                }
                sorted.applied.extend(ids);
                before = send.members_after;
            }
            SendOutcome::Unknown => {
                if ids.iter().any(|i| present.contains(i)) {
                    sorted.applied.extend(ids);
                } else {
                    sorted.not_applied.push(send.batch);
                }
                before = None;
            }
        }
    }
    let mut seen = HashSet::new();
    sorted.taken_out.retain(|i| seen.insert(i.clone()));
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(batch: usize, ids: &[&str], outcome: SendOutcome, after: Option<usize>) -> Send {
        Send {
            batch,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            outcome,
            members_after: after,
        }
    }

    fn present(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_lowercase()).collect()
    }

    #[test]
    fn an_id_alma_took_and_staff_took_out_is_not_sent_again() {
        let sends = [
            send(0, &["A", "B"], SendOutcome::Accepted, Some(2)),
            // The daily quota refused the next call: nothing of it applied.
            send(1, &["C", "D"], SendOutcome::Refused, None),
        ];
        // Staff took B out in Manage Sets.
        let sorted = sort(&sends, &present(&["a"]));
        assert_eq!(sorted.taken_out, ["b"]);
        assert!(sorted.applied.contains("b") && !sorted.applied.contains("c"));
        assert!(sorted.not_applied.is_empty());
    }

    #[test]
    fn a_call_alma_took_in_part_leaves_its_missing_to_the_refused() {
        // Alma skipped one unknown ID: the count grew by 1 for 2 IDs.
        let sends = [send(0, &["A", "X"], SendOutcome::Accepted, Some(1))];
        let sorted = sort(&sends, &present(&["a"]));
        assert!(sorted.taken_out.is_empty());
        assert!(sorted.applied.contains("x"), "not sent again");
    }

    #[test]
    fn a_call_without_an_answer_is_judged_by_the_set() {
        let sends = [
            send(0, &["A", "B"], SendOutcome::Accepted, Some(2)),
            send(1, &["C", "D"], SendOutcome::Unknown, None),
            send(2, &["E"], SendOutcome::Accepted, Some(5)),
        ];
        // C is there: the call landed, D was taken out or refused — either way not sent again.
        let sorted = sort(&sends, &present(&["a", "b", "c"]));
        assert!(sorted.applied.contains("d"));
        assert!(sorted.not_applied.is_empty());
        // After a call without an answer the next count proves nothing: E is not "taken out".
        assert_eq!(sorted.taken_out, Vec::<String>::new());
        // None of its IDs there: not applied, sent again.
        let sorted = sort(&sends[..2], &present(&["a", "b"]));
        assert_eq!(sorted.not_applied, [1]);
        assert!(!sorted.applied.contains("c"));
    }

    #[test]
    fn ids_compare_in_any_case() {
        let sends = [send(0, &["Ab"], SendOutcome::Accepted, Some(1))];
        assert!(sort(&sends, &present(&["AB"])).taken_out.is_empty());
    }
}
