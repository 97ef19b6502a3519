//! Who is using the console. With an admin token, a person signs in once with it and
//! gets a session cookie (HttpOnly, SameSite=Strict, Secure behind a TLS proxy, expiring
//! after `server.console_session`); without one (loopback only, or `admin_auth = "none"`)
//! the console is open and says so on every page. Either way every form that changes
//! something carries a CSRF token, and a request another site started is refused.
//!
//! Sessions live in this process's memory: a restart or another replica asks to sign in
//! again. The cookie holds a random id; the map is keyed by its SHA-256, so the ids
//! themselves are nowhere in memory but the browser's request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};
use sha2::{Digest, Sha256};

use crate::config::{AdminAuth, Secret};
use crate::inbound::auth::ct_eq;

pub const COOKIE: &str = "roam_notify_session";

/// How the console is reached, from `AdminAuth`.
#[derive(Debug)]
pub enum Access {
    /// Sign in with the admin token.
    Token(Secret),
    /// Open; the banner says why.
    Open(&'static str),
}

impl Access {
    pub fn of(auth: &AdminAuth) -> Access {
        match auth {
            AdminAuth::Token { token, .. } => Access::Token(token.clone()),
            AdminAuth::LoopbackOnly => Access::Open(
                "No admin token is set: anyone on this machine can use this console (set server.admin_token to require sign-in).",
            ),
            AdminAuth::Open => Access::Open(
                "admin_auth = \"none\": this console is open to anyone who reaches it, and so is everything it can do.",
            ),
        }
    }
}

#[derive(Debug)]
struct Session {
    expires: Instant,
    csrf: String,
}

/// The signed-in sessions, and the CSRF token of the open console.
#[derive(Debug)]
pub struct Sessions {
    pub access: Access,
    ttl: Duration,
    open_csrf: String,
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// Who is asking, once admitted: the CSRF token their forms carry.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub csrf: String,
    /// The open console's warning; None when signed in.
    pub open: Option<&'static str>,
}

/// 244 bits from the operating system's generator (two v4 UUIDs), as hex.
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    pub fn new(access: Access, ttl: Duration) -> Sessions {
        Sessions {
            access,
            ttl,
            open_csrf: random_token(),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The viewer this request belongs to, if admitted.
    pub fn viewer(&self, headers: &HeaderMap) -> Option<Viewer> {
        match &self.access {
            Access::Open(why) => Some(Viewer {
                csrf: self.open_csrf.clone(),
                open: Some(why),
            }),
            Access::Token(_) => {
                let id = cookie(headers, COOKIE)?;
                let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                map.retain(|_, s| s.expires > now);
                map.get(&key(id)).map(|s| Viewer {
                    csrf: s.csrf.clone(),
                    open: None,
                })
            }
        }
    }

    /// Checks a token typed at the sign-in page (hashes compared in constant time, so
    /// neither content nor length leaks); on success, a new session id.
    pub fn sign_in(&self, typed: &str) -> Option<String> {
        let Access::Token(token) = &self.access else {
            return None;
        };
        let sent = Sha256::digest(typed.trim().as_bytes());
        let want = Sha256::digest(token.expose().as_bytes());
        if !ct_eq(&sent, &want) {
            return None;
        }
        let id = random_token();
        let session = Session {
            expires: Instant::now() + self.ttl,
            csrf: random_token(),
        };
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(&id), session);
        Some(id)
    }

    pub fn sign_out(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, COOKIE) {
            self.map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key(id));
        }
    }

    /// The `Set-Cookie` value for a new session.
    pub fn set_cookie(&self, id: &str, secure: bool) -> String {
        format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.ttl.as_secs(),
            if secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(secure: bool) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        )
    }
}

impl Viewer {
    /// Whether a form's token is this viewer's.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        ct_eq(sent.as_bytes(), self.csrf.as_bytes())
    }
}

/// A cookie's value from the `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether a state-changing request came from another site: the browser says so
/// (`Sec-Fetch-Site`), or its `Origin` names a host other than the one asked.
pub fn cross_site(method: &Method, headers: &HeaderMap) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return false;
    }
    let text = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    match (text("origin"), text("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, rest)| rest.trim_end_matches('/') != host),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn sign_in_needs_the_token_and_gives_a_session() {
        let s = Sessions::new(
            Access::Token(Secret::new("tok-123")),
            Duration::from_secs(60),
        );
        assert!(s.sign_in("wrong").is_none());
        assert!(s.sign_in("tok-12").is_none());
        let id = s.sign_in(" tok-123\n").unwrap();
        assert!(s.viewer(&HeaderMap::new()).is_none());
        let h = headers(&[("cookie", &format!("a=b; {COOKIE}={id}"))]);
        let v = s.viewer(&h).unwrap();
        assert!(v.open.is_none() && v.csrf_ok(&v.csrf.clone()) && !v.csrf_ok("x"));
        s.sign_out(&h);
        assert!(s.viewer(&h).is_none(), "signed out");
        let c = s.set_cookie("abc", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
    }

    #[test]
    fn sessions_expire() {
        let s = Sessions::new(Access::Token(Secret::new("t")), Duration::ZERO);
        let id = s.sign_in("t").unwrap();
        assert!(
            s.viewer(&headers(&[("cookie", &format!("{COOKIE}={id}"))]))
                .is_none()
        );
    }

    #[test]
    fn requests_from_other_sites_are_told_apart() {
        let post = Method::POST;
        assert!(!cross_site(&post, &headers(&[("host", "127.0.0.1:9090")])));
        assert!(!cross_site(
            &post,
            &headers(&[
                ("host", "127.0.0.1:9090"),
                ("origin", "http://127.0.0.1:9090")
            ])
        ));
        assert!(cross_site(
            &post,
            &headers(&[
                ("host", "127.0.0.1:9090"),
                ("origin", "https://evil.example")
            ])
        ));
        assert!(cross_site(
            &post,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
        assert!(cross_site(&post, &headers(&[("origin", "null")])));
        assert!(!cross_site(
            &Method::GET,
            &headers(&[("sec-fetch-site", "cross-site")])
        ));
    }
}
