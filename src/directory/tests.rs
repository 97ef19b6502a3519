use super::*;
use crate::storage::DirEntry;

fn chat(id: &str, name: &str, group: Option<&str>, seen_at: i64) -> DirEntry {
    DirEntry {
        kind: "chat".into(),
        key: id.into(),
        id: id.into(),
        label: name.into(),
        group: group.map(str::to_string),
        chat_kind: Some("channel".into()),
        seen_at,
    }
}

const G1: &str = "G-00000000-0000-4000-8000-000000000001";
const G2: &str = "G-00000000-0000-4000-8000-000000000002";
const C1: &str = "C-00000000-0000-4000-8000-000000000001";
const C2: &str = "C-00000000-0000-4000-8000-000000000002";
const C3: &str = "C-00000000-0000-4000-8000-000000000003";

#[test]
fn destinations_are_ids_names_emails_or_expressions() {
    assert_eq!(Destination::parse(G1), Ok(Destination::Id(G1.into())));
    assert_eq!(
        Destination::parse("#Deploys"),
        Ok(Destination::Name("Deploys".into()))
    );
    assert_eq!(
        Destination::parse("Ann@Example.com"),
        Ok(Destination::Email("ann@example.com".into()))
    );
    assert_eq!(
        Destination::parse("{{pull_request.user.email}}"),
        Ok(Destination::Template("{{pull_request.user.email}}".into()))
    );
    assert!(
        Destination::parse("G-123")
            .unwrap_err()
            .contains("not a Roam id")
    );
    assert!(Destination::parse("#").is_err());
    assert!(Destination::parse("oncall").is_err());
}

#[test]
fn names_resolve_case_insensitively_to_the_group_and_say_what_is_wrong() {
    let s = Snapshot::from_entries(vec![
        chat(C1, "Deploys", Some(G1), 10),
        chat(C2, "Deploy-Bots", Some(G2), 10),
        chat(C3, "deploys", None, 10),
        chat(
            "C-00000000-0000-4000-8000-000000000004",
            "Releases",
            None,
            5,
        ),
    ]);
    assert_eq!(s.chat("Deploy-bots").unwrap().id, G2);
    match s.chat("deploys").unwrap_err() {
        NameError::Ambiguous { matches, .. } => assert_eq!(matches.len(), 2),
        other => panic!("{other}"),
    }
    let e = s.chat("Deplyos").unwrap_err();
    assert!(e.to_string().contains("closest: #"), "{e}");
    // Only an earlier listing had it: its last known id, marked stale.
    let hit = s.chat("releases").unwrap();
    assert!(hit.stale);
}
