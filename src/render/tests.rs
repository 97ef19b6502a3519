use super::*;

fn meta<'a>(name: &'a str) -> EventMeta<'a> {
    EventMeta {
        name,
        source: "gh",
        kind: "github",
        delivery_id: "d1",
        entity: None,
    }
}

#[test]
fn strict_mode_falls_back_with_the_error() {
    let mut t = Templates::builtin().unwrap();
    t.add(vec![Source {
        name: "bad".into(),
        card: false,
        source: "{{nope.nothing}}".into(),
        sample: None,
        origin: TemplateOrigin::BuiltIn,
    }])
    .unwrap();
    let m = meta("github.push");
    let r = t.render_event(
        "bad",
        Format::Card,
        &m,
        &event_context(&m, json!({"html_url": "https://x"})),
    );
    let err = r.error.expect("error reported");
    assert!(err.contains("nope.nothing"), "{err}");
    let text = r.content.readable();
    assert!(
        text.contains("github.push") && text.contains("https://x"),
        "{text}"
    );
}

#[test]
fn stripe_amounts_use_the_currency_s_own_decimals() {
    let t = Templates::builtin().unwrap();
    for (currency, due, shown) in [
        ("jpy", 123_400, "123,400 JPY"),
        ("kwd", 12_345, "12.345 KWD"),
        ("usd", 1_999_900, "19,999.00 USD"),
    ] {
        let payload = json!({"type": "invoice.payment_failed", "livemode": true,
            "data": {"object": {"id": "in_1", "amount_due": due, "currency": currency}}});
        let m = meta("stripe.invoice.payment_failed");
        let text = t
            .render_raw("stripe/invoice", &context(&m, &payload))
            .unwrap();
        assert!(text.contains(shown), "{currency}: {text}");
    }
}

#[test]
fn resolve_prefers_the_most_specific_default() {
    let t = Templates::builtin().unwrap();
    assert_eq!(t.resolve(None, "github.push"), "github/push");
    assert_eq!(
        t.resolve(None, "github.pull_request.closed"),
        "github/pull_request"
    );
    assert_eq!(t.resolve(None, "github.gollum"), "github/default");
    assert_eq!(t.resolve(None, "nosuchkind.thing"), "default");
    assert_eq!(t.resolve(Some("x/y"), "github.push"), "x/y");
}
