//! Throughput of the rowset parser alone on a generated ~50 MB report page (pretty-printed like
//! Alma's, with entities and omitted cells). Turning its buffers into a DataFrame is measured
//! with the transform, in `alma-cohort-core`'s `transform` bench.
//!
//! Run: `cargo bench -p alma-client --bench rowset` (release profile). Prints MB/s and rows/s
//! per round.

use std::time::Instant;

use alma_client::rowset::{Rowset, parse_page};

fn page(target_bytes: usize) -> (Vec<u8>, usize) {
    let mut s = String::with_capacity(target_bytes + 4096);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<report>\n<QueryResult>\n<IsFinished>true</IsFinished>\n<ResultXml>\n<rowset xmlns=\"urn:schemas-microsoft-com:xml-analysis:rowset\">\n");
    s.push_str("<xsd:schema xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:saw-sql=\"urn:saw-sql\"><xsd:complexType name=\"Row\"><xsd:sequence>\n<xsd:element name=\"Column0\" type=\"xsd:int\" saw-sql:columnHeading=\"0\"/>\n");
    for (i, h) in [
        "Primary Identifier",
        "User Group",
        "Account Type",
        "Preferred Email",
        "Last Name",
    ]
    .iter()
    .enumerate()
    {
        s.push_str(&format!(
            "<xsd:element name=\"Column{}\" type=\"xsd:string\" saw-sql:columnHeading=\"{h}\"/>\n",
            i + 1
        ));
    }
    s.push_str("</xsd:sequence></xsd:complexType></xsd:schema>\n");
    let mut rows = 0;
    while s.len() < target_bytes {
        s.push_str("<Row>\n<Column0>0</Column0>\n");
        s.push_str(&format!(
            "<Column1>{:07}</Column1>\n<Column2>UGRAD</Column2>\n<Column3>Internal</Column3>\n",
            rows % 2_000_000
        ));
        if rows % 25 != 0 {
            s.push_str(&format!("<Column4>student.{rows}@example.edu</Column4>\n"));
        }
        s.push_str(if rows % 7 == 0 {
            "<Column5>Smith &amp; Jones</Column5>\n"
        } else {
            "<Column5>Lee</Column5>\n"
        });
        s.push_str("</Row>\n");
        rows += 1;
    }
    s.push_str("</rowset>\n</ResultXml>\n</QueryResult>\n</report>\n");
    (s.into_bytes(), rows)
}

fn main() {
    let (bytes, rows) = page(50 * 1024 * 1024);
    let mb = bytes.len() as f64 / (1024.0 * 1024.0);
    println!("page: {mb:.1} MiB, {rows} rows x 5 columns");
    for round in 1..=5 {
        let t = Instant::now();
        let mut rowset = Rowset::default();
        let info = parse_page(bytes.as_slice(), &mut rowset).expect("the page parses");
        let parse = t.elapsed().as_secs_f64();
        assert_eq!(info.rows, rows);
        assert_eq!(rowset.rows, rows);
        println!(
            "round {round}: parse {parse:.3} s = {:.0} MiB/s, {:.0} rows/s",
            mb / parse,
            rows as f64 / parse
        );
    }
}
