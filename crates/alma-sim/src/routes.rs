//! A request routed to the area that answers it (analytics, sets, jobs, users, the test
//! endpoints), and the simulated institution opened with its history.

use axum::http::StatusCode;

use super::clock::Clock;
use super::config::{Quirk, SimConfig, Target};
use super::state::{Rejection, Req, State};
use super::wire::{AppError, Body, Reply};

impl State {
    /// The institution as configured, with the finished job runs of the hours before (the
    /// `past_instances` knob).
    pub fn open(cfg: SimConfig, clock: Clock) -> Result<Self, String> {
        let mut state = State::new(cfg, clock)?;
        state.seed_past_instances();
        Ok(state)
    }

    /// Runs the request against the simulated Alma.
    pub fn process(&mut self, req: &Req, target: Target) -> Reply {
        self.refresh_jobs();
        let result = match target {
            Target::AnalyticsFirst | Target::AnalyticsNext => self.analytics_reports(req),
            Target::AnalyticsPaths => self.analytics_paths(req),
            Target::SetList => self.list_sets(req),
            Target::SetCreate => self.create_set(req),
            Target::SetGet => self.get_set(req),
            Target::SetOp => self.set_members_op(req),
            Target::SetDelete => self.delete_set(req),
            Target::SetMembers => self.list_members(req),
            Target::JobList => self.list_jobs(req),
            Target::JobGet => self.get_job(req),
            Target::JobRun => self.run_job(req),
            Target::JobInstances => self.list_instances(req),
            Target::JobInstance => self.get_instance(req),
            Target::UserGet => self.get_user(req),
            Target::LetterList => self.list_letters(req),
            Target::LetterGet => self.get_letter(req),
            Target::Test if self.cfg.has(Quirk::TestEndpointsText) => Ok(Reply::rendered(
                StatusCode::OK,
                "text/plain",
                format!("{} request was successful.", req.method),
            )),
            Target::Test => Ok(Reply::ok(
                "test",
                serde_json::json!({"result": format!("{} request was successful.", req.method)}),
            )),
            Target::Unknown | Target::Any | Target::Analytics => {
                Err(AppError::bad_request("SIM_NO_ROUTE", "simulator: unroutable request").into())
            }
        };
        match result {
            Ok(mut reply) => {
                if self.cfg.has(Quirk::TotalRecordCountString)
                    && let Body::Object { value, .. } = &mut reply.body
                    && let Some(total) = value.get("total_record_count").and_then(|t| t.as_u64())
                {
                    value["total_record_count"] = total.to_string().into();
                }
                reply
            }
            Err(Rejection::App(e)) => {
                let tracking = self.tracking_id();
                e.into_reply(req.format, &tracking)
            }
            Err(Rejection::Gateway(g, message)) => g.into_reply(req.format, message.as_deref()),
        }
    }
}
