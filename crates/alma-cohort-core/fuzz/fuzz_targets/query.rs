//! Any text as a query file, with a parameter: the loader returns a spec or an error, never
//! panics; a filled `where` never holds the parameter's value outside a SQL string literal.
#![no_main]

use std::path::Path;

use alma_cohort_core::query::{Params, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut params = Params::new();
    params.insert("g".into(), "x' OR '1'='1".into());
    let _ = parse(text.to_string(), Path::new("/nonexistent/fuzz/q.toml"), &params);
});
