//! `sql_plan`: SQL text of a tenant through the engine API's front half: parse, then each
//! statement through admission, the compatibility rewrites and planning in the tenant's
//! session. Nothing is executed; refusals and planning errors are answers like any other.
//! The first byte picks the tenant (acme or globex), the rest is the text.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tollgate_planner::QueryContext;
use tollgate_planner::metering::{ClientInfo, Protocol};

use super::Harness;

/// Plans every statement of `data` for one tenant.
pub(super) async fn run(harness: &Harness, data: &[u8]) {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let login = if selector % 2 == 0 { "acme" } else { "globex" };
    let service = harness.gateway.service();
    let principal = service.principal(login).expect("a demo login");
    let session = service
        .session(&principal)
        .expect("the demo tenant's session");
    let context = QueryContext::new(
        session,
        principal,
        CancellationToken::new(),
        Arc::new(ClientInfo::new(Protocol::Pgwire)),
    );
    let sql = String::from_utf8_lossy(text);
    let Ok(statements) = service.parse(&context, &sql) else {
        return;
    };
    for statement in statements {
        let _ = service.plan(&context, statement).await;
    }
}
