//! The one integration-test binary. The simulator tests talk to it with a plain HTTP client
//! (reqwest), never through our own Alma client, so the simulator is checked against
//! `shared/alma-api.md`, not against what the client happens to send.

mod support;

mod approval;
mod bad_input;
mod cli;
mod cohort;
mod crash;
mod eligibility;
mod execute;
mod extract;
mod faults;
mod ledger;
mod ledger_lag;
mod letter;
mod listfile;
mod once;
mod operator;
mod plan;
mod retention;
mod scheduled;
mod security;
mod server;
mod shapes;
mod sim_analytics;
mod sim_gateway;
mod sim_jobs;
mod sim_sets;
mod sim_users;
