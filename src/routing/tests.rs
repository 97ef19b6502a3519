use super::*;
use crate::config::{Config, ConfigError};
use crate::directory::Destination;
use crate::render::Templates;
use proptest::prelude::*;
use regex::Regex;
use serde_json::json;

fn router(toml: &str) -> Result<Router, ConfigError> {
    let cfg = Config::from_toml_str(toml, "test.toml")?;
    let sources = crate::inbound::build_sources(&cfg)?;
    let templates = Templates::builtin().unwrap();
    Router::compile(&cfg, &sources, &templates)
}

const SRC: &str = "[[sources]]\nname = \"gh\"\nkind = \"github\"\nsecret = \"s\"\n";
const G: &str = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661";

#[test]
fn first_match_wins_unless_continue() {
    let r = router(&format!(
        "{SRC}[[routes]]\nname = \"a\"\nsource = \"gh\"\nevents = [\"github.push\"]\nto = \"{G}\"\ncontinue = true\n\
         [[routes]]\nname = \"b\"\nsource = \"gh\"\nevents = [\"github.*\"]\nto = \"{G}\"\n\
         [[routes]]\nname = \"c\"\nsource = \"gh\"\nto = \"{G}\"\n"
    ))
    .unwrap();
    let names: Vec<_> = r
        .matching("gh", "github.push", &json!({}))
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let ex = r.explain("gh", "github.issues.opened", &json!({}));
    assert!(ex[0].failed.as_ref().unwrap().contains("not in events"));
    assert!(ex[1].failed.is_none());
    assert!(ex[2].failed.as_ref().unwrap().contains("not reached"));
}

#[test]
fn match_exact_and_regex() {
    let r = router(&format!(
        "{SRC}[[routes]]\nname = \"fail\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.match]\n\"workflow_run.conclusion\" = \"/^(failure|timed_out)$/\"\n\"workflow_run.head_branch\" = \"main\"\n"
    ))
    .unwrap();
    let hit = json!({"workflow_run": {"conclusion": "failure", "head_branch": "main"}});
    let miss = json!({"workflow_run": {"conclusion": "success", "head_branch": "main"}});
    assert_eq!(
        r.matching("gh", "github.workflow_run.completed", &hit)
            .len(),
        1
    );
    assert!(
        r.matching("gh", "github.workflow_run.completed", &miss)
            .is_empty()
    );
    let why = r.explain("gh", "x", &json!({})).remove(0).failed.unwrap();
    assert!(why.contains("missing"), "{why}");
}

#[test]
fn config_errors_name_the_key() {
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"nope\"\nto = \"{G}\"\n"
    ))
    .unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.key.as_str()),
        ("test.toml", "routes[0].source")
    );
    let e = router(&format!("{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.match]\n\"a\" = \"/(/\"\n")).unwrap_err();
    assert!(
        e.key.starts_with("routes[0].match") && e.problem.contains("invalid regex"),
        "{e}"
    );
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\ntemplate = \"nope\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "routes[0].template");
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"general\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "routes[0].to");
}

#[test]
fn destinations_defaults_and_mentions() {
    let r = router(&format!(
        r#"{SRC}
[destinations]
oncall = "{G}"
sales = ["C-11111111-2222-4333-8444-555555555555", "{G}"]

[route_defaults]
source = "gh"
to = "oncall"
continue = true
mentions = ["all"]

[[routes]]
name = "a"

[[routes]]
name = "b"
to = ["sales", "oncall"]
mentions = ["U-b893c426-6d54-4d9a-8e71-6bd53b26124e"]
continue = false
"#
    ))
    .unwrap();
    let rs = r.routes();
    assert_eq!(
        (
            rs[0].source.as_str(),
            rs[0].targets.to.clone(),
            rs[0].continue_
        ),
        ("gh", vec![Destination::Id(G.to_string())], true)
    );
    assert_eq!(rs[0].targets.mentions, [Destination::Id("all".into())]);
    assert_eq!(
        rs[1].targets.to,
        vec![
            Destination::Id("C-11111111-2222-4333-8444-555555555555".to_string()),
            Destination::Id(G.to_string())
        ]
    );
    assert!(!rs[1].continue_);
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"nobody\"\n"
    ))
    .unwrap_err();
    assert!(e.problem.contains("nor a name in [destinations]"), "{e}");
    let e = router(&format!("{SRC}[[routes]]\nname = \"x\"\nto = \"{G}\"\n")).unwrap_err();
    assert_eq!(e.key, "routes[0].source");
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\nmentions = [\"bob\"]\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "routes[0].mentions");
}

#[test]
fn included_files_add_routes_and_name_themselves_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("routes.d")).unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(&main, format!("include = \"routes.d/*.toml\"\n{SRC}[[routes]]\nname = \"main\"\nsource = \"gh\"\nto = \"{G}\"\ncontinue = true\n")).unwrap();
    std::fs::write(dir.path().join("routes.d/a-team.toml"), format!("[destinations]\nteam-a = \"{G}\"\n[[routes]]\nname = \"a\"\nsource = \"gh\"\nto = \"team-a\"\n")).unwrap();
    std::fs::write(dir.path().join("routes.d/notes.txt"), "ignored").unwrap();
    let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
    let cfg = Config::load_with_env(Some(&main), env).unwrap();
    let sources = crate::inbound::build_sources(&cfg).unwrap();
    let r = Router::compile(&cfg, &sources, &Templates::builtin().unwrap()).unwrap();
    let names: Vec<&str> = r.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["main", "a"]);

    let b = dir.path().join("routes.d/b-team.toml");
    std::fs::write(
        &b,
        format!("[[routes]]\nname = \"b\"\nsource = \"nope\"\nto = \"{G}\"\n"),
    )
    .unwrap();
    let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
    let cfg = Config::load_with_env(Some(&main), env).unwrap();
    let sources = crate::inbound::build_sources(&cfg).unwrap();
    let e = Router::compile(&cfg, &sources, &Templates::builtin().unwrap()).unwrap_err();
    assert_eq!(
        (e.origin.as_str(), e.key.as_str()),
        (b.display().to_string().as_str(), "routes[0].source"),
        "{e}"
    );

    std::fs::write(&b, "[[routes]]\nname = \"b\"\nsorce = \"gh\"\n").unwrap();
    let env = crate::config::EnvStrings::from_vars(Vec::<(String, String)>::new());
    let e = Config::load_with_env(Some(&main), env).unwrap_err();
    assert_eq!(e.origin, b.display().to_string(), "{e}");
    assert!(e.key.contains("sorce"), "{e}");
}

#[test]
fn when_conditions_from_toml() {
    let r = router(&format!(
        r#"{SRC}
[[routes]]
name = "ci-failures"
source = "gh"
events = ["github.workflow_run.*"]
to = "{G}"
[routes.when]
all = [
  {{ field = "workflow_run.conclusion", in = ["failure", "timed_out"] }},
  {{ not = {{ field = "workflow_run.head_branch", regex = "^dependabot/" }} }},
  {{ field = "workflow_run.run_attempt", gte = 1 }},
]
"#
    ))
    .unwrap();
    let run = |c: &str, b: &str| json!({"workflow_run": {"conclusion": c, "head_branch": b, "run_attempt": 1}});
    assert_eq!(
        r.matching(
            "gh",
            "github.workflow_run.completed",
            &run("failure", "main")
        )
        .len(),
        1
    );
    let why = r
        .explain(
            "gh",
            "github.workflow_run.completed",
            &run("failure", "dependabot/x"),
        )
        .remove(0)
        .failed
        .unwrap();
    assert!(why.contains("not[...] fails"), "{why}");
    let why = r
        .explain(
            "gh",
            "github.workflow_run.completed",
            &run("success", "main"),
        )
        .remove(0)
        .failed
        .unwrap();
    assert!(why.contains("not one of"), "{why}");
    let e = router(&format!(
        "{SRC}[[routes]]\nname = \"x\"\nsource = \"gh\"\nto = \"{G}\"\n[routes.when]\nany = [ {{ field = \"a\", regex = \"(\" }} ]\n"
    ))
    .unwrap_err();
    assert_eq!(e.key, "routes[0].when.any[0].regex", "{e}");
    assert_eq!(e.origin, "test.toml");
}

proptest! {
    #[test]
    fn glob_star_matches_like_a_regex(p in "[ab*.]{0,8}", s in "[ab.]{0,10}") {
        let re = format!("^{}$", regex::escape(&p).replace("\\*", ".*"));
        prop_assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), Regex::new(&re).unwrap().is_match(&s));
    }
}
