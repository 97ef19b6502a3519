use super::*;

fn env(vars: &[(&str, &str)]) -> EnvStrings {
    EnvStrings::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[test]
fn defaults_load() {
    let c = Config::defaults().unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.server.max_body, 1 << 20);
    assert_eq!(c.roam.burst, 10);
    assert!(c.dry_run());
}

#[test]
fn the_storage_url_is_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db-url");
    std::fs::write(&file, "postgres://rn:hunter2@db:5432/rn\n").unwrap();
    let c = Config::from_toml_str(
        &format!("[storage]\nurl = \"${{file:{}}}\"\n", file.display()),
        "c.toml",
    )
    .unwrap();
    assert_eq!(c.storage.url.expose(), "postgres://rn:hunter2@db:5432/rn");
    assert!(!format!("{c:?}").contains("hunter2"));
    let e = Config::from_toml_str("[storage]\nurl = \"mysql://rn:hunter2@db/rn\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("storage.url") && e.contains("postgres://"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let e = Config::from_toml_str("[storage]\nurl = \"sqlite::memory:\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("storage.url") && e.contains("in-memory"), "{e}");
    let e = Config::from_toml_str("[storage]\nlease = \"15s\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("storage.lease") && e.contains("roam.request_timeout"),
        "{e}"
    );
}

#[test]
fn numeric_looking_secrets_stay_strings() {
    let c = Config::load_with_env(
        None,
        env(&[
            ("ROAM_NOTIFY__ROAM__API_KEY", "0123456789"),
            ("ROAM_NOTIFY__ROAM__BURST", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(c.roam.api_key.unwrap().expose(), "0123456789");
    assert_eq!(c.roam.burst, 3);
    let c = Config::load_with_env(None, env(&[("ROAM_NOTIFY_ROAM_API_KEY", "true")])).unwrap();
    assert_eq!(c.roam.api_key.unwrap().expose(), "true");
}

#[test]
fn unknown_key_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
    let e = Config::load_with_env(Some(&p), env(&[])).unwrap_err();
    assert_eq!(e.origin, p.display().to_string());
    assert_eq!(e.key, "server.listen_port");
    assert!(e.problem.contains("unknown field"), "{e}");
}

#[test]
fn bad_env_value_names_the_variable() {
    let e = Config::load_with_env(None, env(&[("ROAM_NOTIFY__ROAM__BURST", "many")])).unwrap_err();
    assert_eq!(e.origin, "ROAM_NOTIFY__ROAM__BURST", "{e}");
    assert_eq!(e.key, "roam.burst");
}

#[test]
fn invalid_listen_is_reported_with_its_origin() {
    let e =
        Config::load_with_env(None, env(&[("ROAM_NOTIFY__SERVER__LISTEN", "nope")])).unwrap_err();
    assert_eq!(e.origin, "ROAM_NOTIFY__SERVER__LISTEN", "{e}");
    assert_eq!(e.key, "server.listen");
}

#[test]
fn a_console_session_of_zero_is_refused_naming_the_key() {
    let e = Config::from_toml_str("[server]\nconsole_session = \"0s\"\n", "c.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.toml") && e.contains("server.console_session"),
        "{e}"
    );
    Config::from_toml_str(
        "[server]\nconsole = false\nconsole_session = \"0s\"\n",
        "c.toml",
    )
    .expect("no console, no session to last");
}
