//! The console: server-rendered pages on the admin listener, at `/`, for what an
//! operator checks and fixes when something is wrong. Overview (`overview.rs`), outbox
//! (`outbox.rs`), silences (`silences.rs`), routing and explain (`routing.rs`),
//! transcripts (`transcripts.rs`); sign-in and CSRF in `session.rs`.
//!
//! Pages are HTML built with `maud`, which escapes every value it interpolates, so a
//! payload's `<script>` shows as text. The stylesheet is embedded in the binary; no page
//! needs JavaScript or anything outside this process. Forms post back here and redirect
//! (post/redirect/get), so the back button and a reload never repeat an action.

mod outbox;
mod overview;
mod preview;
mod routing;
pub mod session;
mod silences;
mod transcripts;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{DOCTYPE, Markup, html};

use super::AppState;
use crate::config::AdminAuth;
use session::{Access, Sessions, Viewer, cross_site};

/// What every console handler gets: the daemon and the sessions.
#[derive(Debug, Clone)]
pub struct Console {
    pub app: AppState,
    pub sessions: Arc<Sessions>,
}

const CSS: &str = include_str!("assets/console.css");
const ICON: &str = include_str!("assets/icon.svg");

/// The console's pages and forms; merged into the admin router beside the JSON API.
pub fn router<S>(app: AppState, auth: &AdminAuth, session_ttl: Duration) -> Router<S> {
    let console = Console {
        app,
        sessions: Arc::new(Sessions::new(Access::of(auth), session_ttl)),
    };
    Router::new()
        .route("/", get(overview::show))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .merge(outbox::router())
        .merge(silences::router())
        .merge(routing::router())
        .merge(transcripts::router())
        .route("/assets/console.css", get(css))
        .route("/assets/icon.svg", get(icon))
        .with_state(console)
}

async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn icon() -> impl IntoResponse {
    asset("image/svg+xml", ICON)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A page or form refused, or failed: shown as a page with the reason.
#[derive(Debug)]
pub enum Problem {
    /// Not signed in: to the sign-in page, then back.
    SignIn {
        next: String,
    },
    /// A state-changing request without this viewer's CSRF token, or from another site.
    Forbidden(String),
    NotFound(String),
    BadInput(String),
    Conflict(String),
    Storage(String),
}

impl From<crate::storage::StoreError> for Problem {
    fn from(e: crate::storage::StoreError) -> Problem {
        Problem::Storage(e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (code, text) = match self {
            Problem::SignIn { next } => {
                let to = format!("/sign-in?next={}", urlencode(&next));
                return Redirect::to(&to).into_response();
            }
            Problem::Forbidden(t) => (StatusCode::FORBIDDEN, t),
            Problem::NotFound(t) => (StatusCode::NOT_FOUND, t),
            Problem::BadInput(t) => (StatusCode::BAD_REQUEST, t),
            Problem::Conflict(t) => (StatusCode::CONFLICT, t),
            Problem::Storage(t) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage error: {t}"),
            ),
        };
        let body = html! {
            main.narrow {
                h1 { (code.canonical_reason().unwrap_or("Error")) }
                p.problem role="alert" { (text) }
                p { a href="/" { "Back to the overview" } }
            }
        };
        (code, shell("Problem", None, body)).into_response()
    }
}

/// Admits a request to a page: the viewer, or a redirect to sign in. A POST from another
/// site is refused here, before its handler runs.
impl FromRequestParts<Console> for Viewer {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Viewer, Problem> {
        if cross_site(&parts.method, &parts.headers) {
            tracing::warn!(path = %parts.uri.path(), "console: cross-site request refused");
            return Err(Problem::Forbidden(
                "this request came from another site; open the console and use its forms".into(),
            ));
        }
        c.sessions.viewer(&parts.headers).ok_or_else(|| {
            let uri = parts
                .extensions
                .get::<OriginalUri>()
                .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
            let next = if parts.method == axum::http::Method::GET {
                uri.path_and_query().map_or("/", |p| p.as_str()).to_string()
            } else {
                "/".to_string()
            };
            Problem::SignIn { next }
        })
    }
}

/// A confirmed action: a form from this site carrying this viewer's CSRF token (the
/// last argument of a handler that changes something), and who sent it, for the log.
#[derive(Debug)]
pub struct Confirmed {
    pub client: SocketAddr,
}

impl FromRequest<Console> for Confirmed {
    type Rejection = Response;

    async fn from_request(req: Request, c: &Console) -> Result<Confirmed, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, c)
            .await
            .map_err(IntoResponse::into_response)?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |ci| ci.0);
        let Form(f) = Form::<Confirm>::from_request(Request::from_parts(parts, body), c)
            .await
            .map_err(IntoResponse::into_response)?;
        viewer.check(&f.csrf).map_err(IntoResponse::into_response)?;
        Ok(Confirmed { client })
    }
}

impl Viewer {
    /// Refuses a form whose CSRF token is not this viewer's.
    pub fn check(&self, sent: &str) -> Result<(), Problem> {
        if self.csrf_ok(sent) {
            Ok(())
        } else {
            Err(Problem::Forbidden(
                "the form's security token is missing or stale; reload the page and try again"
                    .into(),
            ))
        }
    }
}

/// Which section a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Outbox,
    Silences,
    Routing,
    Transcripts,
}

const SECTIONS: &[(Nav, &str, &str)] = &[
    (Nav::Overview, "/", "Overview"),
    (Nav::Outbox, "/outbox", "Outbox"),
    (Nav::Silences, "/silences", "Silences"),
    (Nav::Routing, "/routing", "Routing"),
    (Nav::Transcripts, "/transcripts", "Transcripts"),
];

/// A console page: navigation, the open-console warning, a notice, the body.
pub fn page(v: &Viewer, title: &str, nav: Nav, notice: Option<&str>, body: Markup) -> Html<String> {
    let inner = html! {
        @if let Some(n) = notice {
            p.notice role="status" { (n) }
        }
        (body)
    };
    shell(title, Some((v, nav)), inner)
}

/// The HTML document around a page.
fn shell(title: &str, nav: Option<(&Viewer, Nav)>, body: Markup) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · roam-notify" }
                link rel="stylesheet" href="/assets/console.css";
                link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { img src="/assets/icon.svg" alt="" width="22" height="22"; " roam-notify" }
                    @if let Some((v, current)) = nav {
                        nav aria-label="Sections" {
                            ul {
                                @for (n, href, label) in SECTIONS {
                                    li {
                                        @if *n == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        @if v.open.is_none() {
                            form.signout method="post" action="/sign-out" {
                                (csrf(v))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if let Some((Viewer { open: Some(why), .. }, _)) = nav {
                    p.open-warning role="note" { strong { "Open console. " } (why) }
                }
                main id="main" { (body) }
            }
        }
    };
    Html(doc.into_string())
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf(v: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf); }
}

#[derive(Debug, serde::Deserialize)]
struct SignInQuery {
    next: Option<String>,
    failed: Option<String>,
}

async fn sign_in_page(
    State(c): State<Console>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<SignInQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if c.sessions.viewer(&headers).is_some() {
        return Redirect::to(&next).into_response();
    }
    let body = html! {
        main.narrow {
            h1 { "Sign in" }
            p { "Enter the admin token (" code { "server.admin_token" } ") once; this browser then stays signed in until the session ends or you sign out." }
            @if q.failed.is_some() {
                p.problem role="alert" { "That token is not the admin token." }
            }
            form method="post" action="/sign-in" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    shell("Sign in", None, body).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct SignInForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

async fn sign_in(
    State(c): State<Console>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    if cross_site(&axum::http::Method::POST, &headers) {
        return Problem::Forbidden("sign-in from another site refused".into()).into_response();
    }
    match c.sessions.sign_in(&f.token) {
        Some(id) => {
            tracing::info!(client = %client, "console: signed in");
            let secure = https(&c, client, &headers);
            let mut resp = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&c.sessions.set_cookie(&id, secure)) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        None => {
            tracing::warn!(client = %client, "console: sign-in refused (wrong token)");
            let to = format!("/sign-in?failed=1&next={}", urlencode(&next));
            Redirect::to(&to).into_response()
        }
    }
}

/// A form that only confirms an action: its CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct Confirm {
    #[serde(default)]
    pub csrf: String,
}

async fn sign_out(State(c): State<Console>, headers: HeaderMap, ok: Confirmed) -> Response {
    c.sessions.sign_out(&headers);
    let mut resp = Redirect::to("/sign-in").into_response();
    let clear = Sessions::clear_cookie(https(&c, ok.client, &headers));
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Whether the browser reached us over TLS: the admin listener speaks plain HTTP, so
/// only a trusted proxy (`server.trusted_proxies`) saying `X-Forwarded-Proto: https`.
fn https(c: &Console, client: SocketAddr, headers: &HeaderMap) -> bool {
    let pipeline = c.app.pipeline.load();
    pipeline
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&client.ip()))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Where to go after signing in: a path on this console only (never `//host` or a URL).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/".into(),
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Unix milliseconds as UTC text.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A duration in words, coarse: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn span(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// A `<time>` element with the UTC time and how long ago.
pub fn ago(ms: i64) -> Markup {
    let secs = (crate::storage::now_ms() - ms) as f64 / 1000.0;
    let rel = if secs >= 0.0 {
        format!("{} ago", span(secs))
    } else {
        format!("in {}", span(-secs))
    };
    html! { time datetime=(when(ms)) title=(when(ms)) { (rel) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_console() {
        assert_eq!(
            safe_next(Some("/outbox?status=dead")),
            "/outbox?status=dead"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn spans_read_as_words() {
        assert_eq!(span(5.0), "5 s");
        assert_eq!(span(125.0), "2 min");
        assert_eq!(span(3_900.0), "1 h 5 min");
        assert_eq!(span(180_000.0), "2 d 2 h");
    }
}
