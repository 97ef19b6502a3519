use super::*;
use axum::body::Bytes;
use axum::http::{Method, Uri};
use schemes::hubspot_v1_v2;
use serde_json::Value;

fn vectors() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/_vectors/signature-vectors.json"
    );
    serde_json::from_str(
        &std::fs::read_to_string(p).expect("tests/fixtures/_vectors/signature-vectors.json"),
    )
    .unwrap()
}

/// A body as the listener hands it over.
fn b(body: &[u8]) -> Bytes {
    Bytes::copy_from_slice(body)
}

fn req<'a>(headers: &'a HeaderMap, body: &'a Bytes) -> Inbound<'a> {
    static M: Method = Method::POST;
    static U: std::sync::OnceLock<Uri> = std::sync::OnceLock::new();
    Inbound {
        method: &M,
        uri: U.get_or_init(|| Uri::from_static("/hooks/x")),
        headers,
        body,
        url_token: None,
        reads: None,
    }
}

/// GitHub's published vector.
#[test]
fn github_published_vector() {
    let v = &vectors()["github_x_hub_signature_256"];
    let secret = v["secret"].as_str().unwrap();
    let body = v["payload"].as_str().unwrap().as_bytes();
    let expected = v["expected"].as_str().unwrap();
    assert_eq!(
        format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), body)),
        expected
    );
    let mut h = HeaderMap::new();
    h.insert("x-hub-signature-256", expected.parse().unwrap());
    let a = Authenticator::HmacSha256Hex {
        header: "X-Hub-Signature-256".into(),
        prefix: "sha256=".into(),
        secrets: vec![Secret::new("old"), Secret::new(secret)],
    };
    assert!(a.verify(&req(&h, &b(body))).is_ok());
    assert!(a.verify(&req(&h, &b(b"Hello, World?"))).is_err());
}

/// The Standard Webhooks reference vector: right signature, but its 2021 timestamp
/// is outside the replay window; with an unlimited window it verifies.
#[test]
fn standard_webhooks_published_vector() {
    let v = &vectors()["standard_webhooks_v1"];
    let mut h = HeaderMap::new();
    h.insert(
        "webhook-id",
        v["webhook-id"].as_str().unwrap().parse().unwrap(),
    );
    h.insert(
        "webhook-timestamp",
        v["webhook-timestamp"].as_str().unwrap().parse().unwrap(),
    );
    h.insert(
        "webhook-signature",
        v["expected"].as_str().unwrap().parse().unwrap(),
    );
    let body = v["payload"].as_str().unwrap().as_bytes();
    let key = standard_webhooks_key(v["secret"].as_str().unwrap()).unwrap();
    let stale = Authenticator::StandardWebhooks {
        keys: vec![key.clone()],
        tolerance: DEFAULT_TOLERANCE,
    };
    let e = stale.verify(&req(&h, &b(body))).unwrap_err();
    assert!(e.message.contains("replay window"), "{e}");
    let open = Authenticator::StandardWebhooks {
        keys: vec![key],
        tolerance: Duration::from_secs(u64::MAX / 4),
    };
    assert!(open.verify(&req(&h, &b(body))).is_ok());
    assert!(
        open.verify(&req(&h, &b(b"{\"test\": 2432232315}")))
            .is_err()
    );
}

/// HubSpot's published v3 vector (timestamp 15000000 ms is far in the past: checked
/// with an unlimited window; the HMAC is what is under test).
#[test]
fn hubspot_v3_published_vector() {
    let v = &vectors()["hubspot"];
    let mut h = HeaderMap::new();
    h.insert(
        "x-hubspot-signature-v3",
        v["v3"]["expected"].as_str().unwrap().parse().unwrap(),
    );
    h.insert(
        "x-hubspot-request-timestamp",
        v["v3"]["timestamp"].to_string().parse().unwrap(),
    );
    let a = Authenticator::HubSpotV3 {
        secrets: vec![Secret::new(v["client_secret"].as_str().unwrap())],
        public_url: v["url"].as_str().unwrap().to_string(),
        tolerance: Duration::from_secs(u64::MAX / 4),
    };
    let body = v["request_body"].as_str().unwrap().as_bytes();
    assert!(a.verify(&req(&h, &b(body))).is_ok());
    assert!(a.verify(&req(&h, &b(b"{}"))).is_err());
    let strict = Authenticator::HubSpotV3 {
        secrets: vec![Secret::new(v["client_secret"].as_str().unwrap())],
        public_url: v["url"].as_str().unwrap().to_string(),
        tolerance: DEFAULT_TOLERANCE,
    };
    assert!(
        strict
            .verify(&req(&h, &b(body)))
            .unwrap_err()
            .message
            .contains("replay window")
    );
}

/// The same vector under Svix's header names.
#[test]
fn standard_webhooks_under_svix_names() {
    let v = &vectors()["standard_webhooks_v1"];
    let mut h = HeaderMap::new();
    h.insert(
        "svix-id",
        v["webhook-id"].as_str().unwrap().parse().unwrap(),
    );
    h.insert(
        "svix-timestamp",
        v["webhook-timestamp"].as_str().unwrap().parse().unwrap(),
    );
    h.insert(
        "svix-signature",
        format!("v1,bm90IGl0 {}", v["expected"].as_str().unwrap())
            .parse()
            .unwrap(),
    );
    let key = standard_webhooks_key(v["secret"].as_str().unwrap()).unwrap();
    let open = Authenticator::StandardWebhooks {
        keys: vec![key],
        tolerance: Duration::from_secs(u64::MAX / 4),
    };
    assert!(
        open.verify(&req(&h, &b(v["payload"].as_str().unwrap().as_bytes())))
            .is_ok()
    );
}

/// HubSpot's published v1 and v2 vectors, including v2 for a GET with an empty body.
#[test]
fn hubspot_v1_v2_published_vectors() {
    let v = &vectors()["hubspot"];
    let secrets = vec![Secret::new(v["client_secret"].as_str().unwrap())];
    let url = v["url"].as_str().unwrap();
    let body = v["request_body"].as_str().unwrap().as_bytes();
    let sig = |k: &str| v[k]["expected"].as_str().unwrap().to_string();
    let mut h = HeaderMap::new();
    h.insert("x-hubspot-signature", sig("v1").parse().unwrap());
    h.insert("x-hubspot-signature-version", "v1".parse().unwrap());
    assert!(hubspot_v1_v2(&h, &secrets, "POST", url, body).is_ok());
    assert!(hubspot_v1_v2(&h, &secrets, "POST", url, b"{}").is_err());
    h.insert("x-hubspot-signature", sig("v2").parse().unwrap());
    h.insert("x-hubspot-signature-version", "v2".parse().unwrap());
    assert!(hubspot_v1_v2(&h, &secrets, "POST", url, body).is_ok());
    assert!(hubspot_v1_v2(&h, &secrets, "POST", "https://www.example.com/other", body).is_err());
    h.insert(
        "x-hubspot-signature",
        v["v2"]["expected_GET_empty_body"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert!(hubspot_v1_v2(&h, &secrets, "GET", url, b"").is_ok());
}

#[test]
fn bearer_any_of_secrets() {
    let a = Authenticator::Bearer {
        secrets: vec![Secret::new("one"), Secret::new("two")],
    };
    let mut h = HeaderMap::new();
    h.insert("authorization", "Bearer two".parse().unwrap());
    assert!(a.verify(&req(&h, &b(b""))).is_ok());
    h.insert("authorization", "Bearer three".parse().unwrap());
    assert!(a.verify(&req(&h, &b(b""))).is_err());
}

#[test]
fn basic_or_bearer() {
    let a = Authenticator::BasicOrBearer {
        secrets: vec![Secret::new("am:pw")],
    };
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        format!("Basic {}", B64.encode("am:pw")).parse().unwrap(),
    );
    assert!(a.verify(&req(&h, &b(b""))).is_ok());
    h.insert(
        "authorization",
        format!("Basic {}", B64.encode("am:nope")).parse().unwrap(),
    );
    assert!(a.verify(&req(&h, &b(b""))).is_err());
    h.insert("authorization", "Bearer am:pw".parse().unwrap());
    assert!(a.verify(&req(&h, &b(b""))).is_ok());
}
