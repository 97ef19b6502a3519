//! A fake HubSpot CRM API (deals, contacts, companies, pipelines, paged owners), with
//! PagerDuty's and Pipedrive's users APIs beside it, that records each call and answers
//! from a script: rate limited with a Retry-After, or slow.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

/// How the fake answers the next calls.
#[derive(Clone, Copy)]
pub(super) enum Answer {
    /// 429 with this Retry-After (seconds).
    RateLimited(u64),
    /// Answers after this long.
    Slow(Duration),
}

#[derive(Default)]
struct Hs {
    /// (path, authorization) of every call.
    calls: Vec<(String, Option<String>)>,
    script: VecDeque<Answer>,
}

#[derive(Clone)]
pub(super) struct FakeHubSpot {
    pub(super) url: String,
    state: Arc<Mutex<Hs>>,
}

impl FakeHubSpot {
    pub(super) async fn start() -> FakeHubSpot {
        let state = Arc::new(Mutex::new(Hs::default()));
        let app = Router::new()
            .route("/crm/v3/objects/{kind}/{id}", get(object))
            .route("/crm/v3/pipelines/{kind}", get(pipelines))
            .route("/crm/v3/owners", get(owners))
            // PagerDuty's and Pipedrive's users APIs, for the same kind of lookup.
            .route("/users/{id}", get(pagerduty_user))
            .route("/api/v1/users/{id}", get(pipedrive_user))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeHubSpot { url, state }
    }

    pub(super) fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Every call's path and `Authorization` header, in order.
    pub(super) fn calls_with_auth(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().calls.clone()
    }

    pub(super) fn calls(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }
}

type Hst = State<Arc<Mutex<Hs>>>;

/// Records the call and plays the script: Some(response) to answer with instead.
async fn scripted(state: &Arc<Mutex<Hs>>, path: String, headers: &HeaderMap) -> Option<Response> {
    let answer = {
        let mut s = state.lock().unwrap();
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        s.calls.push((path, auth));
        s.script.pop_front()
    };
    match answer {
        Some(Answer::RateLimited(secs)) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                Json(json!({"status": "error", "category": "RATE_LIMITS"})),
            )
                .into_response(),
        ),
        Some(Answer::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        None => None,
    }
}

/// The CRM records the fake knows (HubSpot's v3 object shape: id and string properties).
fn records() -> HashMap<(&'static str, &'static str), Value> {
    HashMap::from([
        (
            ("deals", "1246965"),
            json!({"id": "1246965", "properties": {
            "dealname": "ACME Corp renewal", "amount": "48000", "deal_currency_code": "USD",
            "dealstage": "closedwon", "pipeline": "default", "closedate": "2026-11-28T17:00:00Z",
            "hubspot_owner_id": "31"}}),
        ),
        (
            ("deals", "777"),
            json!({"id": "777", "properties": {
            "dealname": "Tiny pilot", "amount": "900", "deal_currency_code": "JPY",
            "dealstage": "appointmentscheduled", "pipeline": "default", "hubspot_owner_id": "31"}}),
        ),
        (
            ("contacts", "501"),
            json!({"id": "501", "properties": {
            "firstname": "Kim", "lastname": "Lee", "email": "kim@client.example", "company": "Client Ltd",
            "hubspot_owner_id": "31"}}),
        ),
        (
            ("companies", "601"),
            json!({"id": "601", "properties": {"name": "Client Ltd", "domain": "client.example"}}),
        ),
    ])
}

async fn object(
    State(state): Hst,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = scripted(&state, format!("objects/{kind}/{id}"), &headers).await {
        return r;
    }
    match records()
        .into_iter()
        .find(|((k, i), _)| *k == kind && *i == id)
    {
        Some((_, v)) => Json(v).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"status": "error", "category": "OBJECT_NOT_FOUND"})),
        )
            .into_response(),
    }
}

async fn pipelines(State(state): Hst, Path(kind): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = scripted(&state, format!("pipelines/{kind}"), &headers).await {
        return r;
    }
    Json(
        json!({"results": [{"id": "default", "label": "Sales Pipeline", "stages": [
        {"id": "appointmentscheduled", "label": "Appointment Scheduled"},
        {"id": "closedwon", "label": "Closed Won"},
        {"id": "closedlost", "label": "Closed Lost"}]}]}),
    )
    .into_response()
}

/// The owners list, one owner per page (`paging.next.after`), so paging is exercised.
async fn owners(
    State(state): Hst,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let after: usize = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    if let Some(r) = scripted(&state, format!("owners?after={after}"), &headers).await {
        return r;
    }
    let all = [
        json!({"id": "30", "email": "sam@acme.example", "firstName": "Sam", "lastName": "Roe"}),
        json!({"id": "31", "email": "jane.doe@acme.example", "firstName": "Jane", "lastName": "Doe"}),
        json!({"id": "32", "email": "lee@acme.example", "firstName": "Lee", "lastName": "Poe"}),
    ];
    let mut body = json!({"results": [all[after].clone()]});
    if after + 1 < all.len() {
        body["paging"] = json!({"next": {"after": (after + 1).to_string()}});
    }
    Json(body).into_response()
}

/// PagerDuty's `GET /users/{id}` (`Authorization: Token token=…`).
async fn pagerduty_user(State(state): Hst, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = scripted(&state, format!("pagerduty/users/{id}"), &headers).await {
        return r;
    }
    match id.as_str() {
        "PJ0LVEB" => Json(
            json!({"user": {"id": "PJ0LVEB", "name": "PIG 208", "email": "pig208@acme.example"}}),
        )
        .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "Not Found", "code": 2100}})),
        )
            .into_response(),
    }
}

/// Pipedrive's `GET /api/v1/users/{id}?api_token=…`.
async fn pipedrive_user(
    State(state): Hst,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = q.get("api_token").cloned().unwrap_or_default();
    if let Some(r) = scripted(
        &state,
        format!("pipedrive/users/{id}?api_token={token}"),
        &headers,
    )
    .await
    {
        return r;
    }
    match id.as_str() {
        "1234567" => Json(json!({"success": true, "data": {"id": 1234567, "name": "Pat Seller", "email": "pat@acme.example"}})).into_response(),
        _ => (StatusCode::NOT_FOUND, Json(json!({"success": false, "error": "User not found"}))).into_response(),
    }
}
