//! Saved plans (`plan --save`): the run a plan would start, frozen — its record as `apply` will
//! journal it (query and file hashes, parameters, period, set and job, the exclusion files'
//! hashes) and every ID of its cohort — with who planned it, the approvals it got, and whether it
//! was applied or superseded by a newer plan of the same query and period.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::store::{Error, Journal, RunRecord, insert_run, json};

/// One approval of a saved plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Approval {
    /// Who approved: the OS account, or the `--as` name where the query allows it.
    pub approver: String,
    /// The OS account that ran `approve`.
    pub os_user: String,
    pub at: String,
    pub note: Option<String>,
    /// The digest (`sha256:…`) of the plan's canonical text this approval approved; `None` for
    /// approvals recorded before approvals were bound to one (they count for nothing).
    pub digest: Option<String>,
    /// An SSH signature (`-----BEGIN SSH SIGNATURE-----`) over the canonical text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The principal `allowed_signers` named for the signing key (the approver, when signed).
    pub principal: Option<String>,
    /// The signing key's fingerprint (`SHA256:…`).
    pub key: Option<String>,
}

/// A saved plan as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SavedPlan {
    pub plan_id: String,
    pub query: String,
    pub period: Option<String>,
    pub planned_by: String,
    pub planned_at: String,
    /// saved | applied | superseded | withdrawn (approved and expired are read from the approvals
    /// and the age)
    pub state: String,
    pub applied_at: Option<String>,
    pub superseded_by: Option<String>,
    /// The Alma the plan was made against: its address and a fingerprint of the key (never the
    /// key), so that a plan made on a sandbox is not applied in production.
    pub alma: Option<String>,
    pub approvals: Vec<Approval>,
    /// The run `apply` will journal (state planned).
    pub record: RunRecord,
    /// The canonical text the plan was saved with (`plans show`): what an approval approves.
    /// `None` for plans saved before it existed.
    #[serde(skip)]
    pub canonical: Option<String>,
    /// The frozen cohort, in its order.
    #[serde(skip)]
    pub cohort: Vec<String>,
}

impl SavedPlan {
    /// Who approved it, in order, comma-separated; `None` before the first approval.
    pub fn approvers(&self) -> Option<String> {
        (!self.approvals.is_empty()).then(|| {
            self.approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

/// A plan's stored state (`None`: no such plan).
fn state_of(tx: &rusqlite::Transaction<'_>, plan_id: &str) -> rusqlite::Result<Option<String>> {
    tx.query_row("SELECT state FROM plans WHERE plan_id = ?1", [plan_id], |r| r.get(0))
        .optional()
}

/// Why a plan that had to be saved is not: unknown, or applied, superseded, withdrawn.
/// Moves a plan that is still saved on, in `tx`: `set` is the `UPDATE`'s assignments, with `value`
/// as `?1`. A plan no longer saved (applied, withdrawn, superseded meanwhile) or unknown is the
/// inner error, naming its state.
fn leave_saved(
    tx: &rusqlite::Transaction<'_>,
    set: &str,
    value: &str,
    plan_id: &str,
) -> rusqlite::Result<Result<(), Error>> {
    let changed = tx.execute(
        &format!("UPDATE plans SET {set} WHERE plan_id = ?2 AND state = 'saved'"),
        params![value, plan_id],
    )?;
    if changed == 1 {
        Ok(Ok(()))
    } else {
        not_saved(tx, plan_id).map(Err)
    }
}

fn not_saved(tx: &rusqlite::Transaction<'_>, plan_id: &str) -> rusqlite::Result<Error> {
    Ok(match state_of(tx, plan_id)? {
        None => Error::NoSuchPlan(plan_id.to_string()),
        Some(state) => Error::PlanMoved {
            plan_id: plan_id.to_string(),
            state,
        },
    })
}

impl Journal {
    /// Saves a plan: its would-be run record and cohort. Earlier saved (not applied) plans of the
    /// same query and period are superseded by it; their ids come back.
    pub fn save_plan(
        &mut self,
        record: &RunRecord,
        cohort: &[String],
        alma: Option<&str>,
        canonical: &str,
    ) -> Result<Vec<String>, Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.immediate()?;
        let superseded: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT plan_id FROM plans WHERE query = ?1 AND period IS ?2 AND state = 'saved'")
                .map_err(sql)?;
            stmt.query_map(params![record.query, record.period], |r| r.get(0))
                .map_err(sql)?
                .collect::<Result<_, _>>()
                .map_err(sql)?
        };
        tx.execute(
            "UPDATE plans SET state = 'superseded', superseded_by = ?1 WHERE query = ?2 AND period IS ?3 AND state = 'saved'",
            params![record.run_id, record.query, record.period],
        )
        .map_err(sql)?;
        tx.execute(
            "INSERT INTO plans (plan_id, query, period, planned_by, planned_at, record, alma, canonical) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                record.run_id,
                record.query,
                record.period,
                record.run_by,
                record.started_at,
                json(record),
                alma,
                canonical
            ],
        )
        .map_err(sql)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO plan_cohort (plan_id, position, primary_id) VALUES (?1, ?2, ?3)")
                .map_err(sql)?;
            for (i, id) in cohort.iter().enumerate() {
                insert.execute(params![record.run_id, i as i64, id]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)?;
        Ok(superseded)
    }

    /// A saved plan, or `None`.
    pub fn find_plan(&self, plan_id: &str) -> Result<Option<SavedPlan>, Error> {
        let row = self
            .conn
            .query_row(
                "SELECT plan_id, query, period, planned_by, planned_at, state, applied_at, superseded_by, record, alma, canonical
                 FROM plans WHERE plan_id = ?1",
                [plan_id],
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                        ),
                        (
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ),
                        r.get::<_, String>(8)?,
                        (r.get::<_, Option<String>>(9)?, r.get::<_, Option<String>>(10)?),
                    ))
                },
            )
            .optional()
            .map_err(self.sql())?;
        let Some((
            (plan_id, query, period, planned_by),
            (planned_at, state, applied_at, superseded_by),
            record,
            (alma, canonical),
        )) = row
        else {
            return Ok(None);
        };
        let record: RunRecord = serde_json::from_str(&record).map_err(|e| Error::Corrupt {
            run_id: plan_id.clone(),
            message: format!("saved plan: {e}"),
        })?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT approver, os_user, at, note, digest, signature, principal, key FROM approvals WHERE plan_id = ?1 ORDER BY rowid",
            )
            .map_err(self.sql())?;
        let approvals = stmt
            .query_map([&plan_id], |r| {
                Ok(Approval {
                    approver: r.get(0)?,
                    os_user: r.get(1)?,
                    at: r.get(2)?,
                    note: r.get(3)?,
                    digest: r.get(4)?,
                    signature: r.get(5)?,
                    principal: r.get(6)?,
                    key: r.get(7)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        let cohort = self.plan_cohort(&plan_id)?;
        Ok(Some(SavedPlan {
            plan_id,
            query,
            period,
            planned_by,
            planned_at,
            state,
            applied_at,
            superseded_by,
            alma,
            cohort,
            approvals,
            record,
            canonical,
        }))
    }

    /// A saved plan; an unknown id is an error naming it.
    pub fn plan(&self, plan_id: &str) -> Result<SavedPlan, Error> {
        self.find_plan(plan_id)?
            .ok_or_else(|| Error::NoSuchPlan(plan_id.to_string()))
    }

    /// Every saved plan, newest first.
    pub fn plans(&self) -> Result<Vec<SavedPlan>, Error> {
        let ids = self.strings("SELECT plan_id FROM plans ORDER BY planned_at DESC, plan_id DESC", [])?;
        ids.iter().map(|id| self.plan(id)).collect()
    }

    /// The plan's frozen cohort, in its order.
    pub fn plan_cohort(&self, plan_id: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT primary_id FROM plan_cohort WHERE plan_id = ?1 ORDER BY position",
            [plan_id],
        )
    }

    /// Records an approval of a plan that is still saved (in one transaction with that check).
    pub fn approve_plan(&mut self, plan_id: &str, approval: &Approval) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.immediate()?;
        if state_of(&tx, plan_id).map_err(sql)?.as_deref() != Some("saved") {
            return Err(not_saved(&tx, plan_id).map_err(sql)?);
        }
        tx.execute(
            "INSERT INTO approvals (plan_id, approver, os_user, at, note, digest, signature, principal, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                plan_id,
                approval.approver,
                approval.os_user,
                approval.at,
                approval.note,
                approval.digest,
                approval.signature,
                approval.principal,
                approval.key
            ],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Withdraws a plan that is still saved (approved or not): `apply` refuses it from now on.
    pub fn withdraw_plan(&mut self, plan_id: &str, by: &str, reason: &str) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.immediate()?;
        leave_saved(
            &tx,
            "state = 'withdrawn', superseded_by = ?1",
            &format!("withdrawn by {by}: {reason}"),
            plan_id,
        )
        .map_err(sql)??;
        tx.commit().map_err(sql)
    }

    /// Applies a saved plan: journals its run (with the plan's frozen cohort) and marks the plan
    /// applied, in one transaction — a second `apply`, here or in another process, finds it
    /// applied and writes nothing.
    pub fn apply_plan(&mut self, plan_id: &str, run: &RunRecord, cohort: &[String]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.immediate()?;
        leave_saved(&tx, "state = 'applied', applied_at = ?1", &run.started_at, plan_id).map_err(sql)??;
        insert_run(&tx, run, cohort).map_err(sql)?;
        tx.commit().map_err(sql)
    }
}
