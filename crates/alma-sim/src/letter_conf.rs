//! The User Notifications Letter as the institution has it (its state, who edited it last and
//! when), kept by the simulator's state and shown by the letters API (`letters.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::config::LetterState;

/// The letter Update/Notify Users sends (alma-api.md §7, §8c).
pub const USER_NOTIFICATIONS_LETTER: &str = "UserNotificationsLetter";

/// Who last edited the letter, by default, and after an edit (`--letter-edited-at`, a runtime
/// change).
pub const USUAL_EDITOR: (&str, &str) = ("jsmith", "Jane Smith");
pub const OTHER_EDITOR: (&str, &str) = ("rlopez", "Rosa Lopez");

/// How long before the simulator's start the letters were last edited, unless told otherwise.
const LAST_EDIT_DAYS_BEFORE_START: i64 = 400;

/// The User Notifications Letter as the institution has it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetterConf {
    pub state: LetterState,
    pub update_date: NaiveDate,
    pub updated_by: (&'static str, &'static str),
    /// When the other letters were last edited.
    pub others_updated: NaiveDate,
}

impl LetterConf {
    pub fn new(state: LetterState, edited_at: Option<DateTime<Utc>>, start: NaiveDate) -> Self {
        let usual = start - chrono::Duration::days(LAST_EDIT_DAYS_BEFORE_START);
        let (update_date, updated_by) = match edited_at {
            Some(t) => (t.date_naive(), OTHER_EDITOR),
            None => (usual, USUAL_EDITOR),
        };
        Self {
            state,
            update_date,
            updated_by,
            others_updated: usual,
        }
    }

    /// Staff changed the letter at `now`.
    pub fn set(&mut self, state: LetterState, now: DateTime<Utc>) {
        self.state = state;
        self.update_date = now.date_naive();
        self.updated_by = OTHER_EDITOR;
    }

    /// What happens to the letter for one user under a notification: `(emailed,
    /// carries_password, why not)`. The letter is emailed when it is enabled, its channel is
    /// EMAIL and the user has a preferred address; it carries the password when, besides, its
    /// XSL has the password branch and the notification is Notify Password Change.
    pub fn delivery(&self, has_preferred_email: bool, password_change: bool) -> (bool, bool, Option<&'static str>) {
        match self.state {
            LetterState::Disabled => (false, false, Some("letter disabled")),
            LetterState::Sms => (false, false, Some("letter sent by SMS")),
            LetterState::BrokenXsl => (false, false, Some("letter XSL not XML")),
            _ if !has_preferred_email => (false, false, Some("no preferred email")),
            LetterState::NoPasswordBranch => (true, false, Some("letter has no password branch")),
            LetterState::Standard | LetterState::Reworded => (true, password_change, None),
        }
    }
}
