//! Lists that Alma pages by `limit` and `offset` (sets, members, jobs, instances), walked to
//! their end the same way for every endpoint.

use std::ops::ControlFlow;

use reqwest::Method;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::model::ListPage;

impl AlmaClient {
    /// Walks a list by `limit` and `offset` until `each` breaks, a page is empty (an error while
    /// the items seen are fewer than `total_record_count`: [`Error::List`]), the items seen reach
    /// `total_record_count`, or — with no total — a page is shorter than asked. The offset
    /// moves by the items received (Alma's pages can be longer or shorter than the limit). A list
    /// without a total that has not ended after [`MAX_PAGES_WITHOUT_TOTAL`] pages is an error
    /// (an answer that ignores the offset would otherwise be asked for without end).
    /// Returns the number of items seen.
    pub(crate) async fn each_page<P: ListPage>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        limit: usize,
        mut each: impl FnMut(Vec<P::Item>) -> ControlFlow<()>,
    ) -> Result<usize, Error> {
        let limit_text = limit.to_string();
        let (mut seen, mut pages) = (0usize, 0usize);
        loop {
            pages += 1;
            let offset = seen.to_string();
            let mut params = query.to_vec();
            params.extend([("limit", limit_text.as_str()), ("offset", offset.as_str())]);
            let page: P = self
                .call_typed(Method::GET, path, &params, None, Repeat::Always)
                .await?;
            let (items, total) = page.into_parts();
            let n = items.len();
            seen += n;
            if n == 0 {
                // An empty page before the total: the rest of the list was not given, and a
                // decision on part of it (who was mailed, whose set this is) is a guess.
                if let Some(total) = total.filter(|t| (seen as u64) < *t) {
                    return Err(Error::List {
                        path: format!("/almaws/v1/{path}"),
                        message: format!(
                            "ended at offset {seen} with an empty page although its total_record_count is {total}"
                        ),
                    });
                }
                return Ok(seen);
            }
            if each(items).is_break() {
                return Ok(seen);
            }
            match total {
                Some(total) if seen as u64 >= total => return Ok(seen),
                Some(_) => {}
                None if n < limit => return Ok(seen),
                None if pages >= MAX_PAGES_WITHOUT_TOTAL => {
                    return Err(Error::Report {
                        path: format!("/almaws/v1/{path}"),
                        message: format!(
                            "the list gives no total_record_count and has not ended after {pages} pages ({seen} items); Alma's answer looks wrong — try again later, or ask Ex Libris"
                        ),
                    });
                }
                None => {}
            }
        }
    }
}

/// Pages read of a list that gives no `total_record_count` before giving up.
pub(crate) const MAX_PAGES_WITHOUT_TOTAL: usize = 1000;
