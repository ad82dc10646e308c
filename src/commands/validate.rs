//! `alma-cohort validate QUERY`: the query file checked offline, and its report's headings when
//! Alma is given.

use alma_client::AlmaClient;
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::{self, flow};
use alma_cohort_core::query;
use alma_cohort_core::settings::{self, Settings};

use crate::cli::ValidateArgs;
use crate::out::outln;

pub async fn validate(settings: Settings, args: ValidateArgs) -> Result<Exit, Error> {
    let spec = flow::load_query(&args.query.query, &args.query.params)?;
    pipeline::check_offline(&spec)?;
    // Two query files of one name would name one period's set alike: the second's run would be
    // refused as "already in Alma", or its users taken for the first's. Checked last, after what
    // is wrong in the file itself.
    let same_name = || -> Result<(), Error> {
        match query::same_name_beside(&args.query.query, &spec.name)? {
            None => Ok(()),
            Some(other) => Err(Error::Input {
                path: args.query.query.clone(),
                line: None,
                message: format!(
                    "its name {:?} is also the name of {}: their --period runs would name one set (\"{}\") and Alma would take them for one intent; give each query its own name",
                    spec.name,
                    other.display(),
                    pipeline::ledger::period_set_name(&spec.name, "PERIOD")
                ),
            }),
        }
    };
    // After the ok line: the name a `run --period` gives its set.
    let note = || {
        outln!(
            "note: run --period 2027-spring names its set \"{}\" (the period as given, lower case; the same on every server; [set] name goes to its description)",
            pipeline::ledger::period_set_name(&spec.name, "2027-spring")
        )
    };
    let report = match &spec.origin {
        query::Origin::File(file) => {
            // A list file is checked offline, whole: readable, and with the headings the query names.
            let (rows, notes) = pipeline::check_list_file(&spec, file)?;
            same_name()?;
            outln!(
                "ok: {} is valid; its file {} has the headings it names ({rows} rows; {})",
                args.query.query.display(),
                file.path.display(),
                notes.join("; ")
            )?;
            note()?;
            return Ok(Exit::Done);
        }
        query::Origin::Report(r) => r,
    };
    // Offline, the query is checked as far as it can be, and the line says what kept Alma out —
    // a key file that is refused is that, not "no key".
    let why_offline = match (&settings.base_url, settings.api_key()) {
        (Some(_), Ok(_)) => None,
        (None, _) => Some("give --base-url (or --region) and an API key to check them".to_string()),
        (Some(_), Err(settings::Error::NoKey)) => {
            Some("give an API key (ALMA_API_KEY or --api-key-file) to check them".to_string())
        }
        (Some(_), Err(e)) => Some(format!(
            "the API key was not read: {}",
            e.to_string().replace('\n', "; ")
        )),
    };
    if let Some(why) = why_offline {
        same_name()?;
        outln!(
            "ok: {} is valid (its report's headings were not checked: {why})",
            args.query.query.display()
        )?;
        note()?;
        return Ok(Exit::Done);
    }
    let client = AlmaClient::new(settings.client_config()?)?;
    let headings = client.report_headings(&pipeline::report_query(report)).await?;
    let refs: Vec<&str> = headings.iter().map(String::as_str).collect();
    pipeline::check_report_headings(&spec, &refs)?;
    same_name()?;
    outln!(
        "ok: {} is valid; its report has the headings it names ({} headings: {})",
        args.query.query.display(),
        headings.len(),
        headings.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
    )?;
    note()?;
    Ok(Exit::Done)
}
