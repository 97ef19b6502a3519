//! Roam's API faked: it validates each request against Roam's published spec, records
//! it, and answers as scripted (failures, 429s, latency, an outage). chat.post,
//! chat.update, token.info and chat.list here; transcripts and user.lookup in
//! `transcripts`, webhook subscriptions in `webhooks`.

mod transcripts;
mod webhooks;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::test_files;
use transcripts::{
    assert_transcript_shape, record_get, transcript_info, transcript_list, user_lookup,
};
use webhooks::{webhook_subscribe, webhook_unsubscribe};

/// One request the fake Roam received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
    /// Problems found validating the body against chat.json; must stay empty.
    pub schema_errors: Vec<String>,
    /// The status the fake answered.
    pub status: u16,
    /// chat.post: the message timestamp the fake handed out.
    pub given_ts: Option<i64>,
    /// The `Roam-Version` header sent.
    pub roam_version: Option<String>,
}

impl Recorded {
    fn new(
        path: &str,
        headers: &HeaderMap,
        body: Value,
        schema_errors: Vec<String>,
        status: u16,
        given_ts: Option<i64>,
    ) -> Recorded {
        Recorded {
            path: path.into(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
            at: Instant::now(),
            schema_errors,
            status,
            given_ts,
            roam_version: headers
                .get("roam-version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// A scripted answer for the next chat.post.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    Status(u16, Option<&'static str>),
    RateLimited(&'static str),
    /// Answer 200, but only after this delay.
    Slow(Duration),
}

#[derive(Default)]
struct FakeState {
    recorded: Vec<Recorded>,
    script: VecDeque<Reply>,
    down: bool,
    /// Every successful chat.post answers after this long.
    latency: Duration,
    /// chat.post requests being answered now, and the most at once so far.
    in_flight: usize,
    max_in_flight: usize,
    token_info: Option<(u16, Value)>,
    transcripts: Transcripts,
    /// chat.list: the chats the bot sees, served this many per page.
    chats: Vec<Value>,
    chat_page: usize,
    /// webhook.subscribe: live subscriptions (id, event, url).
    subscriptions: Vec<Value>,
    /// chat.list and user.lookup answer 503 (Roam's directory is unreachable).
    directory_down: bool,
}

/// The fake's meeting transcripts (`transcript.list` / `transcript.info`).
#[derive(Default)]
struct Transcripts {
    all: Vec<Value>,
    /// Page size of transcript.list (at most the `limit` asked for).
    page: usize,
    /// What `after` compares: a transcript's end (true) or its start.
    after_compares_end: bool,
    /// Scripted answers for the next transcript.* calls.
    script: VecDeque<Reply>,
    /// transcript.info answers 503 for these ids.
    failing: std::collections::HashSet<String>,
    /// email -> user id, for user.lookup.
    users: std::collections::HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeRoam {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    _stop: Arc<DropGuard>,
}

/// Validators for the request bodies the fake checks.
struct Validators {
    post: jsonschema::Validator,
    update: jsonschema::Validator,
}

struct DropGuard(CancellationToken);
impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A request schema from Roam's published spec, closed against extra fields (so we
/// also catch a field the spec does not define).
fn request_validator(path: &str) -> jsonschema::Validator {
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/chat.json")).unwrap(),
    )
    .unwrap();
    let mut schema =
        spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "{path} schema not found in chat.json");
    schema["additionalProperties"] = json!(false);
    jsonschema::validator_for(&schema).unwrap()
}

impl FakeRoam {
    pub async fn start() -> FakeRoam {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let validators = Arc::new(Validators {
            post: request_validator("/chat.post"),
            update: request_validator("/chat.update"),
        });
        let app = Router::new()
            .route("/v0/chat.post", post(chat_post))
            .route("/v0/chat.update", post(chat_update))
            .route("/v0/token.info", get(token_info))
            .route("/v0/transcript.list", get(transcript_list))
            .route("/v0/transcript.info", get(transcript_info))
            .route("/v0/user.lookup", get(user_lookup))
            .route("/v0/chat.list", get(chat_list))
            .route("/v0/webhook.subscribe", post(webhook_subscribe))
            .route("/v0/webhook.unsubscribe", post(webhook_unsubscribe))
            .with_state((state.clone(), validators));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await;
        });
        FakeRoam {
            url: format!("http://{addr}/v0"),
            state,
            _stop: Arc::new(DropGuard(stop)),
        }
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Every successful chat.post answers after `d` (a send takes time, so a killed
    /// sender can die mid-send).
    pub fn set_latency(&self, d: Duration) {
        self.state.lock().unwrap().latency = d;
    }

    /// The most slow chat.post requests (see `set_latency`) answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// While down, every chat.post gets 503.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// The webhook subscriptions made so far and not removed.
    pub fn subscriptions(&self) -> Vec<Value> {
        self.state.lock().unwrap().subscriptions.clone()
    }

    /// Serves these chats from chat.list, `page` per page (with nextCursor).
    pub fn set_chats(&self, chats: Vec<Value>, page: usize) {
        let mut s = self.state.lock().unwrap();
        s.chats = chats;
        s.chat_page = page;
    }

    pub fn set_token_info(&self, status: u16, body: Value) {
        self.state.lock().unwrap().token_info = Some((status, body));
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// chat.post requests answered 2xx.
    pub fn delivered(&self) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path.ends_with("chat.post") && (200..300).contains(&r.status))
            .collect()
    }

    /// Adds a transcript (a `transcript.info` body; no `end` means the meeting is live),
    /// checked against chat.json's `Transcript` schema so the fake answers as Roam would.
    pub fn add_transcript(&self, t: Value) {
        assert_transcript_shape(&t);
        self.state.lock().unwrap().transcripts.all.push(t);
    }

    /// Replaces a transcript with the same id (e.g. the meeting has ended now).
    pub fn update_transcript(&self, t: Value) {
        assert_transcript_shape(&t);
        let mut s = self.state.lock().unwrap();
        let list = &mut s.transcripts.all;
        list.retain(|x| x["id"] != t["id"]);
        list.push(t);
    }

    /// `transcript.list` pages of `page` items; `after` compares ends (true) or starts.
    pub fn transcript_listing(&self, page: usize, after_compares_end: bool) {
        let mut s = self.state.lock().unwrap();
        s.transcripts.page = page;
        s.transcripts.after_compares_end = after_compares_end;
    }

    pub fn script_transcripts(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .transcripts
            .script
            .extend(replies);
    }

    pub fn fail_transcript(&self, id: &str, failing: bool) {
        let mut s = self.state.lock().unwrap();
        if failing {
            s.transcripts.failing.insert(id.to_string());
        } else {
            s.transcripts.failing.remove(id);
        }
    }

    /// chat.list and user.lookup answer 503 while `down`.
    pub fn set_directory_down(&self, down: bool) {
        self.state.lock().unwrap().directory_down = down;
    }

    pub fn add_user(&self, email: &str, id: &str) {
        self.state
            .lock()
            .unwrap()
            .transcripts
            .users
            .insert(email.to_string(), id.to_string());
    }

    /// Requests to a path (`transcript.info`, ...) that were answered `status`.
    pub fn calls(&self, path: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path.ends_with(path))
            .collect()
    }

    /// chat.update requests answered 2xx.
    pub fn updates(&self) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path.ends_with("chat.update") && (200..300).contains(&r.status))
            .collect()
    }

    pub fn texts(&self) -> Vec<String> {
        self.delivered()
            .iter()
            .map(|r| crate::blockkit::readable(&r.body))
            .collect()
    }

    /// Fails the test if any request body broke the chat.json schema.
    pub fn assert_all_valid(&self) {
        for r in self.recorded() {
            assert!(
                r.schema_errors.is_empty(),
                "request {} violates chat.json: {:?}\n{}",
                r.path,
                r.schema_errors,
                r.body
            );
        }
    }
}

type FakeCtx = (Arc<Mutex<FakeState>>, Arc<Validators>);

/// The first message timestamp the fake hands out; each chat.post gets the next one.
pub const FIRST_TS: i64 = 1765602474760032;

async fn chat_update(
    State((state, validators)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut schema_errors: Vec<String> = validators
        .update
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    let block_errors = crate::blockkit::errors(&value);
    schema_errors.extend(block_errors.iter().cloned());
    let mut s = state.lock().unwrap();
    let known = s.recorded.iter().any(|r| {
        r.given_ts.is_some() && r.given_ts == value.get("timestamp").and_then(Value::as_i64)
    });
    let (status, resp) = if !block_errors.is_empty() {
        (
            400,
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": block_errors.join("; ")})),
            )
                .into_response(),
        )
    } else if known {
        (
            200,
            Json(json!({"chat": value["chat"], "timestamp": value["timestamp"]})).into_response(),
        )
    } else {
        (
            404,
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "message_not_found"})),
            )
                .into_response(),
        )
    };
    s.recorded.push(Recorded::new(
        "/v0/chat.update",
        &headers,
        value,
        schema_errors,
        status,
        None,
    ));
    resp
}

async fn chat_post(
    State((state, validators)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut schema_errors: Vec<String> = validators
        .post
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    let block_errors = crate::blockkit::errors(&value);
    schema_errors.extend(block_errors.iter().cloned());
    let reply = {
        let mut s = state.lock().unwrap();
        if !block_errors.is_empty() {
            Reply::Status(400, Some("invalid_blocks"))
        } else if s.down {
            Reply::Status(503, None)
        } else {
            match s.script.pop_front() {
                Some(r) => r,
                None if !s.latency.is_zero() => Reply::Slow(s.latency),
                None => Reply::Ok,
            }
        }
    };
    let ts = FIRST_TS + state.lock().unwrap().recorded.len() as i64;
    let ok = Json(json!({"chat": "C-0f7e1d1c-0000-4000-8000-000000000001", "timestamp": ts}));
    let (status, resp) = match reply {
        Reply::Ok => (200, ok.into_response()),
        Reply::Slow(d) => {
            {
                let mut s = state.lock().unwrap();
                s.in_flight += 1;
                s.max_in_flight = s.max_in_flight.max(s.in_flight);
            }
            tokio::time::sleep(d).await;
            state.lock().unwrap().in_flight -= 1;
            (200, ok.into_response())
        }
        Reply::Status(code, msg) => {
            let st = StatusCode::from_u16(code).unwrap();
            (
                code,
                (st, Json(json!({"error": msg.unwrap_or("fake failure")}))).into_response(),
            )
        }
        Reply::RateLimited(retry_after) => (
            429,
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after)],
                Json(json!({"error": "rate limited"})),
            )
                .into_response(),
        ),
    };
    state.lock().unwrap().recorded.push(Recorded::new(
        "/v0/chat.post",
        &headers,
        value,
        schema_errors,
        status,
        (status == 200).then_some(ts),
    ));
    resp
}

async fn token_info(State((state, _)): State<FakeCtx>, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    let (status, body) = s.token_info.clone().unwrap_or((
        200,
        json!({"addr": "B-b893c426-6d54-4d9a-8e71-6bd53b26124e", "scopes": ["chat:send_message"],
               "roam": {"id": "12QJUIKR29", "name": "Test Org", "imageUrl": "https://ro.am/i", "iconUrl": "https://ro.am/c"}}),
    ));
    s.recorded.push(Recorded::new(
        "/v0/token.info",
        &headers,
        Value::Null,
        vec![],
        status,
        None,
    ));
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

/// `chat.list` (chat.json): pages of `chat_page` chats with an opaque cursor; the fake's
/// own answers are checked against the spec's response schema.
async fn chat_list(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if state.lock().unwrap().directory_down {
        record_get(&state, "/v0/chat.list", &headers, &q, 503);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = {
        let s = state.lock().unwrap();
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let size = limit.min(s.chat_page.max(1));
        let from: usize = q
            .get("cursor")
            .and_then(|c| c.strip_prefix("cur-"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let items: Vec<Value> = s.chats.iter().skip(from).take(size).cloned().collect();
        let mut body = json!({"chats": items});
        if from + size < s.chats.len() {
            body["nextCursor"] = json!(format!("cur-{}", from + size));
        }
        body
    };
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/chat.json")).unwrap(),
    )
    .unwrap();
    let mut schema = spec["paths"]["/chat.list"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]
        .clone();
    // The item schema refers to #/components/schemas/TaggedUUID.
    schema["components"] = spec["components"].clone();
    let valid = jsonschema::validator_for(&schema).unwrap();
    assert!(
        valid.is_valid(&body),
        "the fake's chat.list answer breaks chat.json: {body}"
    );
    record_get(&state, "/v0/chat.list", &headers, &q, 200);
    Json(body).into_response()
}
