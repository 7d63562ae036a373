//! `GET /events`: the journal's events as Docker's records, replayed
//! since `since`, then followed until `until` or until the client leaves.

use std::time::Duration;

use super::attach::client_gone;
use super::http::{self, Chunked, Conn, Request};
use super::server::Stream;
use super::{engine_error, Handled, Next};
use crate::engine::events::{self, EventsRequest, Step};
use crate::engine::filters::Filters;
use crate::engine::Engine;

/// How long to wait between looks at the journal.
const POLL: Duration = Duration::from_millis(200);

/// `GET /events?since=&until=&filters=`.
pub fn events(engine: &Engine, conn: &mut Conn<Stream>, req: &Request) -> Handled {
    let _ = conn.read_body(req, http::MAX_JSON_BODY);
    let parsed = Filters::from_json(req.param("filters").unwrap_or(""))
        .and_then(|f| EventsRequest::parse(req.param("since"), req.param("until"), f));
    let ereq = match parsed {
        Ok(r) => r,
        Err(e) => return engine_error(&mut conn.stream, &e),
    };
    let mut reader = events::open(engine, &ereq);
    let client = conn.stream.try_clone()?;
    // The head at once: clients wait for it before doing what makes the
    // events they want to see.
    let mut out = Chunked::start(&mut conn.stream, 200, "application/json")?;
    loop {
        match reader.step() {
            Step::Events(records) => {
                for r in &records {
                    out.json(r)?;
                }
            }
            Step::Idle => {
                if client_gone(&client, POLL) {
                    return Ok(Next::Close);
                }
            }
            Step::End => break,
        }
    }
    out.finish()?;
    Ok(Next::Continue)
}
