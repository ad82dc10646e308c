//! Any bytes as a report page: the parser returns a page or an error, never panics, and a failed
//! page leaves the rowset as it was.
#![no_main]

use alma_client::rowset::{Rowset, parse_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rowset = Rowset::default();
    if parse_page(data, &mut rowset).is_ok() {
        // A second page over the first's schema, as paging does.
        let before = rowset.clone();
        if parse_page(data, &mut rowset).is_err() {
            assert_eq!(rowset, before, "a failed page is rolled back");
        }
        for c in &rowset.columns {
            assert_eq!(c.cells.len(), rowset.rows);
        }
    } else {
        assert_eq!(rowset, Rowset::default());
    }
});
