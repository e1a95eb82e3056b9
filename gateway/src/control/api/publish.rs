//! `POST /v1/admin/datasets/{id}/publish`: a new version of a dataset for its push channels.
//! Every active `nats` and `mqtt` channel of the dataset gets the whole dataset again, as
//! that channel sees it; the one way to push a dataset read live from a database after its
//! first snapshot.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use tollgate_catalog::DatasetId;
use tollgate_catalog::store::push_records::{PUSH_PUBLICATION, PushPublicationRecord};
use tollgate_catalog::store::{Expect, Write};

use super::{Admin, ApiState, PathParams, audited};
use crate::control::Problem;
use crate::control::problem::{CallerProblems, ProblemBody};

/// `POST /v1/admin/datasets/{id}/publish`.
#[utoipa::path(
    post,
    path = "/v1/admin/datasets/{id}/publish",
    tag = "admin",
    params(("id" = String, Path, description = "A served dataset")),
    responses((status = 202, description = "Published: the number of this version, pushed within the push poll interval", body = Object), (status = 404, description = "No dataset of that id is served", body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "Published concurrently; try again", body = ProblemBody, content_type = "application/problem+json"), CallerProblems)
)]
pub async fn publish_dataset(
    State(state): State<Arc<ApiState>>,
    Admin(actor): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    let plane = &state.plane;
    let served = DatasetId::parse(&id)
        .ok()
        .is_some_and(|dataset| plane.service.catalog().dataset(&dataset).is_some());
    let number = if served {
        let mut last = 0;
        for document in plane.store.list(PUSH_PUBLICATION, None).await? {
            let publication: PushPublicationRecord = document.parse()?;
            if publication.dataset == id {
                last = last.max(publication.number);
            }
        }
        last + 1
    } else {
        0
    };
    let writes = if served {
        let publication = PushPublicationRecord {
            dataset: id.clone(),
            number,
            created_at: Utc::now(),
        };
        Ok(vec![Write::put(
            PUSH_PUBLICATION,
            PushPublicationRecord::id(&id, number),
            "",
            &publication,
            Expect::Absent,
        )])
    } else {
        Err(Problem::NotFound(format!("dataset `{id}`")))
    };
    audited(plane, &actor, "dataset.publish", &id, writes).await?;
    plane.push.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "dataset": id, "publication": number })),
    )
        .into_response())
}
