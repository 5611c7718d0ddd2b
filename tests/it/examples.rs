//! The files in `examples/` are documentation people copy: these tests keep them true. The
//! environment file must name every variable the configuration reads and be a valid configuration
//! even with every commented default switched on; the repository map must parse.

use std::collections::BTreeMap;

use journeyman::config::{Config, parse_repos};

const ENV_FILE: &str = include_str!("../../examples/openproject.env");
const REPOS_FILE: &str = include_str!("../../examples/repos.txt");
const CONFIG_SOURCE: &str = include_str!("../../src/config/mod.rs");

/// Every `NAME=value` line of the env file, commented out or not, quotes stripped as the shell
/// would. Later lines win (the file lists alternatives after the one it recommends).
fn env_entries() -> BTreeMap<String, String> {
    ENV_FILE
        .lines()
        .map(|l| l.trim_start_matches('#'))
        .filter(|l| l.starts_with("JOURNEYMAN_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// The variables `src/config/mod.rs` reads: the fields of its `Raw` struct, upper-cased.
fn config_variables() -> Vec<String> {
    let raw = CONFIG_SOURCE
        .split("struct Raw {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("config/mod.rs has a Raw struct");
    raw.lines()
        .filter_map(|l| l.trim().split_once(": Option<String>"))
        .map(|(name, _)| format!("JOURNEYMAN_{}", name.to_ascii_uppercase()))
        .collect()
}

#[test]
fn the_example_env_file_names_every_variable_the_configuration_reads() {
    let vars = config_variables();
    assert!(vars.len() > 30, "found the Raw fields: {vars:?}");
    let entries = env_entries();
    let missing: Vec<&String> = vars.iter().filter(|v| !entries.contains_key(*v)).collect();
    assert!(
        missing.is_empty(),
        "not in examples/openproject.env: {missing:?}"
    );
    let unknown: Vec<&String> = entries.keys().filter(|k| !vars.contains(k)).collect();
    assert!(
        unknown.is_empty(),
        "not read by src/config/mod.rs: {unknown:?}"
    );
}

#[test]
fn the_example_env_file_is_valid_with_every_default_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "secret\n").unwrap();
        path.display().to_string()
    };
    let mut vars = env_entries();
    // Paths on the machine the file is written for; secrets as either value or file, not both.
    vars.insert("JOURNEYMAN_OPENPROJECT_TOKEN_FILE".into(), file("op-token"));
    vars.insert("JOURNEYMAN_GIT_TOKEN_FILE".into(), file("git-token"));
    vars.insert("JOURNEYMAN_GIT_SSH_KEY".into(), file("id_ed25519"));
    vars.remove("JOURNEYMAN_OPENPROJECT_TOKEN");
    vars.remove("JOURNEYMAN_GIT_TOKEN");
    let config =
        Config::from_vars(vars).unwrap_or_else(|e| panic!("examples/openproject.env: {e}"));
    assert_eq!(config.repos.len(), 2);
    assert_eq!(config.repos[0].project, "greet");
    assert_eq!(config.names.phase_type, "Phase");
    assert_eq!(config.names.story_type, "User story");
}

#[test]
fn the_example_repository_map_parses_without_its_comment_lines() {
    let map: String = REPOS_FILE
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let repos = parse_repos(Some(&map)).expect("examples/repos.txt parses");
    let summary: Vec<(&str, &str)> = repos
        .iter()
        .map(|r| (r.project.as_str(), r.base_branch.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("greet", "main"), ("website", "develop"), ("infra", "main")]
    );
}
