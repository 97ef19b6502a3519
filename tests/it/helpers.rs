//! Test harness: a fake Roam API, an in-process daemon on a free port, fixture signing.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use roam_notify::Application;
use roam_notify::config::Config;

pub const KEY: &str = "test-org-key-0123";
pub const SECRET: &str = "test-webhook-secret";
pub const CHAT_A: &str = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661";
pub const CHAT_B: &str = "C-11111111-2222-4333-8444-555555555555";

/// `tests/` in the repository: `fixtures/` (senders' published payloads), `roam-openapi/`
/// (Roam's specs) and `data/` (payloads written here); see `tests/README.md`.
pub fn test_files() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// A fixture's exact bytes.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = test_files().join("fixtures").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", p.display()))
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A Standard Webhooks signature (`v1,<base64>`) of `{id}.{timestamp}.{body}` with a
/// `whsec_` secret (its base64 part is the key).
pub fn sign_standard_webhooks(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    m.update(format!("{id}.{timestamp}.").as_bytes());
    m.update(body);
    format!("v1,{}", b64.encode(m.finalize().into_bytes()))
}

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

/// The binary under test, without the caller's config or key in its environment.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_roam-notify"));
    c.env_remove("ROAM_NOTIFY_CONFIG")
        .env_remove("ROAM_NOTIFY_ROAM_API_KEY");
    c
}

/// The stdout of a command that must have succeeded (else the test fails showing both
/// streams).
pub fn stdout_ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
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

/// A config for tests: fake Roam, fast pacing and retries, a github source and a route
/// sending everything from it to CHAT_A. `extra` is appended.
pub fn test_config(roam_url: &str, db: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
[roam]
base_url = "{roam_url}"
api_key = "{KEY}"
rate_per_second = 200
burst = 50
request_timeout = "{request_timeout}"
[storage]
url = "{db}"
lease = "{lease}"
[delivery]
retry_initial = "50ms"
retry_max = "200ms"
give_up_after = "1h"

[[sources]]
name = "github"
kind = "github"
secret = "{SECRET}"
{extra}
"#,
        db = storage_url(db),
        // On PostgreSQL a restarted daemon takes back what it was sending only when its
        // old claims run out: keep that short (and sends shorter still) in tests.
        request_timeout = if on_postgres() { "2s" } else { "10s" },
        lease = if on_postgres() { "5s" } else { "60s" },
    )
}

/// Whether this test run keeps its data in PostgreSQL (`ROAM_NOTIFY_TEST_STORAGE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("ROAM_NOTIFY_TEST_STORAGE").as_deref() == Ok("postgres")
}

/// The storage URL for a test's database file. With `ROAM_NOTIFY_TEST_STORAGE=postgres`
/// (a second pass of `.ci/run`) each file name stands for its own fresh PostgreSQL schema
/// instead, the same one each time the test asks (so restarts find their data).
pub fn storage_url(db: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", db.display());
    }
    static SCHEMAS: std::sync::Mutex<Option<HashMap<PathBuf, String>>> =
        std::sync::Mutex::new(None);
    let mut schemas = SCHEMAS.lock().unwrap_or_else(|p| p.into_inner());
    let schemas = schemas.get_or_insert_with(HashMap::new);
    if let Some(url) = schemas.get(db) {
        return url.clone();
    }
    let name = db.display().to_string();
    // Made on a thread of its own: this is called from sync code inside a runtime.
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(roam_notify::storage::testing::postgres_url(&name))
    })
    .join()
    .unwrap()
    .expect("ROAM_NOTIFY_TEST_STORAGE=postgres needs a PostgreSQL server");
    schemas.insert(db.to_path_buf(), url.clone());
    url
}

pub const ROUTE_ALL_GITHUB: &str = r#"
[[routes]]
name = "all-github"
source = "github"
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
"#;

/// A fake Roam and a daemon on `test_config` plus `extra`, with its temporary directory.
pub async fn app_with(extra: &str) -> (TestApp, FakeRoam, tempfile::TempDir) {
    let fake = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&test_config(&fake.url, &dir.path().join("t.db"), extra)).await;
    (app, fake, dir)
}

/// A daemon running in this process on a free port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub dir: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(toml: &str) -> TestApp {
        let cfg =
            Config::from_toml_str(toml, "test.toml").unwrap_or_else(|e| panic!("test config: {e}"));
        Self::start_config(cfg).await
    }

    /// From a config file, as `serve --config FILE` loads it (so it can be reloaded).
    pub async fn spawn_file(path: &Path) -> TestApp {
        let cfg = Config::load(Some(path)).unwrap_or_else(|e| panic!("test config: {e}"));
        Self::start_config(cfg).await
    }

    pub async fn start_config(cfg: Config) -> TestApp {
        let app = Application::build(cfg)
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        let addr = app.local_addr().unwrap();
        let admin = app.admin_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            addr,
            admin,
            http: reqwest::Client::new(),
            shutdown,
            task,
            dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.admin.expect("admin listener is off")
        )
    }

    /// POSTs a GitHub-style delivery signed with `secret`.
    pub async fn github(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        secret: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url("/hooks/github"))
            .header("content-type", "application/json")
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(secret, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Sends the `push` fixture under `delivery` and checks it was accepted.
    pub async fn push_accepted(&self, delivery: &str) {
        let r = self
            .github("push", delivery, &fixture("github/push.json"), SECRET)
            .await;
        assert_eq!(r.status(), 202, "push {delivery} not accepted");
    }

    pub async fn readyz(&self) -> Value {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `/readyz` until `cond` holds (at most 10 s) and returns the last answer.
    pub async fn wait_ready(&self, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let ready = self.readyz().await;
            if cond(&ready) || start.elapsed() > Duration::from_secs(10) {
                return ready;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }
}

/// Polls `cond` until it holds; fails after `limit` (a bound, not a timing assertion).
pub async fn wait_for<F: FnMut() -> bool>(what: &str, limit: Duration, mut cond: F) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fails the test if `t` is not a `Transcript` as chat.json defines it (closed against
/// fields the spec does not have).
fn assert_transcript_shape(t: &Value) {
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/chat.json")).unwrap(),
    )
    .unwrap();
    let mut components = spec["components"].clone();
    components["schemas"]["Transcript"]["additionalProperties"] = json!(false);
    let schema = json!({"$ref": "#/components/schemas/Transcript", "components": components});
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = v.iter_errors(t).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "fake transcript breaks chat.json: {errors:?}\n{t}"
    );
}

/// Pops a scripted answer for a transcript call, if any (429s, failures; `Slow` waits,
/// then answers normally).
async fn scripted_transcript_reply(state: &Arc<Mutex<FakeState>>) -> Option<Response> {
    let reply = state.lock().unwrap().transcripts.script.pop_front()?;
    Some(match reply {
        Reply::RateLimited(after) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", after)],
            Json(json!({"error": "rate limited"})),
        )
            .into_response(),
        Reply::Status(code, msg) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": msg.unwrap_or("fake failure")})),
        )
            .into_response(),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            return None;
        }
        Reply::Ok => return None,
    })
}

fn record_get(
    state: &Arc<Mutex<FakeState>>,
    path: &str,
    headers: &HeaderMap,
    q: &std::collections::HashMap<String, String>,
    status: u16,
) {
    let body = json!(q);
    state
        .lock()
        .unwrap()
        .recorded
        .push(Recorded::new(path, headers, body, vec![], status, None));
}

async fn transcript_list(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = scripted_transcript_reply(&state).await {
        record_get(
            &state,
            "/v0/transcript.list",
            &headers,
            &q,
            r.status().as_u16(),
        );
        return r;
    }
    let body = {
        let s = state.lock().unwrap();
        let t = &s.transcripts;
        let after = q
            .get("after")
            .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok());
        let mut list: Vec<Value> = t
            .all
            .iter()
            .filter(|x| {
                let Some(after) = after else { return true };
                let key = if t.after_compares_end { &x["end"] } else { &x["start"] };
                key.as_str()
                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
                    .is_some_and(|v| v > after)
            })
            .map(|x| {
                // TranscriptMetadata: no summary, cues or action items in the listing.
                json!({"id": x["id"], "meetingId": x["meetingId"], "start": x["start"], "end": x["end"], "participants": x["participants"]})
            })
            .collect();
        list.sort_by(|a, b| a["start"].as_str().cmp(&b["start"].as_str()));
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        let size = limit.min(if t.page == 0 { 100 } else { t.page });
        let from: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
        let items: Vec<Value> = list.iter().skip(from).take(size).cloned().collect();
        let mut body = json!({"transcripts": items});
        if from + size < list.len() {
            body["nextCursor"] = json!((from + size).to_string());
        }
        body
    };
    record_get(&state, "/v0/transcript.list", &headers, &q, 200);
    Json(body).into_response()
}

async fn transcript_info(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(r) = scripted_transcript_reply(&state).await {
        record_get(
            &state,
            "/v0/transcript.info",
            &headers,
            &q,
            r.status().as_u16(),
        );
        return r;
    }
    let id = q.get("id").cloned().unwrap_or_default();
    let (status, resp) = {
        let s = state.lock().unwrap();
        if s.transcripts.failing.contains(&id) {
            (
                503,
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "upstream_timeout"})),
                )
                    .into_response(),
            )
        } else {
            match s.transcripts.all.iter().find(|t| t["id"] == id.as_str()) {
                Some(t) => (200, Json(t.clone()).into_response()),
                None => (
                    404,
                    (
                        StatusCode::NOT_FOUND,
                        Json(json!({"error": "transcript_not_found"})),
                    )
                        .into_response(),
                ),
            }
        }
    };
    record_get(&state, "/v0/transcript.info", &headers, &q, status);
    resp
}

async fn user_lookup(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let email = q.get("email").cloned().unwrap_or_default();
    if state.lock().unwrap().directory_down {
        record_get(&state, "/v0/user.lookup", &headers, &q, 503);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let found = state.lock().unwrap().transcripts.users.get(&email).cloned();
    let (status, resp) = match found {
        Some(id) => (
            200,
            Json(json!({"id": id, "name": "x", "email": email})).into_response(),
        ),
        None => (
            404,
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "user_not_found"})),
            )
                .into_response(),
        ),
    };
    record_get(&state, "/v0/user.lookup", &headers, &q, status);
    resp
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real binary, started with `serve --config FILE` on a given port. Dropping it
/// kills the process, so a failing test leaves none behind.
pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub log: std::path::PathBuf,
}

impl Daemon {
    pub async fn start(config: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_roam-notify"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("ROAM_NOTIFY__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("ROAM_NOTIFY__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
            .env_remove("ROAM_NOTIFY_ROAM_API_KEY")
            .env_remove("ROAM_NOTIFY_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let d = Daemon {
            child,
            port,
            log: log.to_path_buf(),
        };
        let start = Instant::now();
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                && r.status() == 200
            {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "daemon did not start:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn github(&self, event: &str, delivery: &str, body: &[u8]) -> u16 {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/hooks/github", self.port))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("X-Hub-Signature-256", sign(SECRET, body))
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no chance to clean up
        self.child.wait().unwrap();
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub async fn routes(&self) -> i64 {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/readyz", self.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["config"]["routes"].as_i64().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Already gone after kill9 or a waited-for stop; then these only fail.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// A schema from webhooks.json, with its components so `$ref`s resolve.
fn webhooks_schema(pointer: &str) -> jsonschema::Validator {
    let spec: Value = serde_json::from_slice(
        &std::fs::read(test_files().join("roam-openapi/webhooks.json")).unwrap(),
    )
    .unwrap();
    let mut schema = spec.pointer(pointer).unwrap().clone();
    schema["components"] = spec["components"].clone();
    jsonschema::validator_for(&schema).unwrap()
}

/// `webhook.subscribe` (webhooks.json): the body is validated against the request schema;
/// the same event and URL update one subscription; a URL that is not HTTPS (outside
/// localhost) gets 400 as Roam does.
async fn webhook_subscribe(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let valid = webhooks_schema("/components/schemas/WebhookSubscriptionRequest");
    let errors: Vec<String> = valid.iter_errors(&body).map(|e| e.to_string()).collect();
    let url = body["url"].as_str().unwrap_or("");
    let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
    let (status, answer) = if !errors.is_empty() {
        (400, json!({"error": errors.join("; ")}))
    } else if !url.starts_with("https://") && !local {
        (400, json!({"error": "url must use https"}))
    } else {
        let mut s = state.lock().unwrap();
        let existing = s
            .subscriptions
            .iter()
            .find(|x| x["url"] == body["url"] && x["event"] == body["event"])
            .cloned();
        let sub = existing.unwrap_or_else(|| {
            let sub = json!({"id": uuid::Uuid::new_v4().to_string(), "event": body["event"], "url": body["url"]});
            s.subscriptions.push(sub.clone());
            sub
        });
        let ok = webhooks_schema("/components/schemas/Webhook");
        assert!(
            ok.is_valid(&sub),
            "the fake's answer breaks webhooks.json: {sub}"
        );
        (200, sub)
    };
    state.lock().unwrap().recorded.push(Recorded::new(
        "/v0/webhook.subscribe",
        &headers,
        body,
        errors,
        status,
        None,
    ));
    (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response()
}

/// `webhook.unsubscribe`: a form with `id` (JSON is refused, as v0 does): 204, or 404.
async fn webhook_unsubscribe(
    State((state, _)): State<FakeCtx>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let is_form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let id = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned());
    let status = match (is_form, id) {
        (true, Some(id)) => {
            let mut s = state.lock().unwrap();
            let before = s.subscriptions.len();
            s.subscriptions.retain(|x| x["id"] != id.as_str());
            if s.subscriptions.len() < before {
                204
            } else {
                404
            }
        }
        _ => 400,
    };
    state.lock().unwrap().recorded.push(Recorded::new(
        "/v0/webhook.unsubscribe",
        &headers,
        json!(String::from_utf8_lossy(&body)),
        vec![],
        status,
        None,
    ));
    StatusCode::from_u16(status).unwrap().into_response()
}
