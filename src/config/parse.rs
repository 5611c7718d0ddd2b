//! The value parsers: one kind of value each (URL, secret, pod name, repository list, duration,
//! amount, name, list of names, e-mail, address, log format), from the variable's text or its
//! default to a checked value, or to a one-line [`ConfigError`] naming the variable and saying what
//! is expected. Pure, except that secrets may be read from their `*_FILE` and the pod name defaults
//! to the hostname.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, LogFormat, PREFIX, RepoMapping, defaults, err};

pub(super) fn parse_url(var: &str, value: Option<&str>) -> Result<Url, ConfigError> {
    let value = value.ok_or_else(|| {
        err(
            var,
            "is required: the base URL of OpenProject, e.g. https://openproject.example.com",
        )
    })?;
    let url = Url::parse(value.trim()).map_err(|e| {
        err(
            var,
            format!(
                "expected an http(s) URL like https://openproject.example.com, got `{value}` ({e})"
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err(
            var,
            format!(
                "expected an http or https URL, got scheme `{}`",
                url.scheme()
            ),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err(var, "must not carry a query or fragment"));
    }
    Ok(url)
}

/// A secret from `NAME` or `NAME_FILE`, never both.
pub(super) fn secret(
    var: &str,
    value: Option<&str>,
    file: Option<&str>,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(err(
            var,
            format!(
                "set either {PREFIX}{0} or {PREFIX}{0}_FILE, not both",
                var.to_ascii_uppercase()
            ),
        )),
        (Some(v), None) => Ok(Some(SecretString::from(v.trim().to_string()))),
        (None, Some(path)) => {
            let file_var = format!("{var}_file");
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(&file_var, format!("cannot read secret file `{path}`: {e}")))?;
            let text = text.trim();
            if text.is_empty() {
                return Err(err(&file_var, format!("secret file `{path}` is empty")));
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// `JOURNEYMAN_POD_NAME`, or the hostname when it is unset.
pub(super) fn pod_name(value: Option<&str>) -> Result<String, ConfigError> {
    match value {
        Some(name) => validate_pod_name(name),
        None => default_pod_name(),
    }
}

fn validate_pod_name(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(err(
            "pod_name",
            format!(
                "expected a pod name of letters, digits, `-`, `.` or `_` (at most 253), got `{name}`"
            ),
        ))
    }
}

fn default_pod_name() -> Result<String, ConfigError> {
    let host = nix::unistd::gethostname().map_err(|e| {
        err(
            "pod_name",
            format!("is unset and the hostname cannot be read ({e}); set it"),
        )
    })?;
    let host = host.to_string_lossy();
    validate_pod_name(&host).map_err(|_| {
        err(
            "pod_name",
            format!("is unset and the hostname `{host}` is not a valid pod name; set it"),
        )
    })
}

/// `JOURNEYMAN_REPOS`: entries `PROJECT=GIT_URL[#BASE_BRANCH]`, separated by commas, semicolons or
/// whitespace. `#` never appears in a git URL, so it is a safe separator for the branch.
pub fn parse_repos(value: Option<&str>) -> Result<Vec<RepoMapping>, ConfigError> {
    const EXPECTED: &str = "expected `PROJECT=GIT_URL[#BASE_BRANCH]` entries separated by commas, e.g. `demo=https://git.example.com/demo.git#main`";
    let value = value.ok_or_else(|| err("repos", format!("is required: {EXPECTED}")))?;
    let mut repos: Vec<RepoMapping> = Vec::new();
    for entry in value
        .split([',', ';', ' ', '\n', '\t'])
        .filter(|s| !s.is_empty())
    {
        let (project, rest) = entry
            .split_once('=')
            .ok_or_else(|| err("repos", format!("{EXPECTED}; got `{entry}`")))?;
        let (url, branch) = rest
            .split_once('#')
            .unwrap_or((rest, defaults::BASE_BRANCH));
        if project.is_empty() || url.is_empty() || branch.is_empty() {
            return Err(err("repos", format!("{EXPECTED}; got `{entry}`")));
        }
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(err(
                "repos",
                format!("`{branch}` in `{entry}` is not a valid branch name"),
            ));
        }
        if url.contains('@') && url.starts_with("http") {
            return Err(err(
                "repos",
                format!(
                    "`{project}`: do not put credentials in the URL; use JOURNEYMAN_GIT_TOKEN(_FILE)"
                ),
            ));
        }
        if repos.iter().any(|r| r.project == project) {
            return Err(err("repos", format!("project `{project}` is listed twice")));
        }
        repos.push(RepoMapping {
            project: project.into(),
            url: url.into(),
            base_branch: branch.into(),
        });
    }
    if repos.is_empty() {
        return Err(err("repos", format!("is empty: {EXPECTED}")));
    }
    Ok(repos)
}

/// A duration like `30s`, `5m`, `2h` or `1h 30m` (humantime); `default` when unset.
pub fn duration(
    var: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(text) = value.map(str::trim) else {
        return Ok(default);
    };
    let d = humantime::parse_duration(text).map_err(|_| {
        err(
            var,
            format!("expected a duration like `30s`, `5m` or `2h`, got `{text}`"),
        )
    })?;
    if d.is_zero() {
        return Err(err(var, format!("must be greater than zero, got `{text}`")));
    }
    Ok(d)
}

pub(super) fn positive_int(
    var: &str,
    value: Option<&str>,
    default: u32,
) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(err(
                var,
                format!("expected a whole number greater than zero, got `{text}`"),
            )),
        },
    }
}

pub(super) fn money(var: &str, value: Option<&str>, default: f64) -> Result<f64, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.trim().trim_start_matches('$').parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
            _ => Err(err(
                var,
                format!(
                    "expected an amount in US dollars greater than zero, like `2.50`, got `{text}`"
                ),
            )),
        },
    }
}

pub(super) fn name(var: &str, value: Option<&str>, default: &str) -> Result<String, ConfigError> {
    let text = value.unwrap_or(default).trim();
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(err(
            var,
            format!("expected a non-empty name without control characters, got `{text}`"),
        ));
    }
    Ok(text.to_string())
}

/// A comma-separated list of names, none twice; `default` when unset.
pub(super) fn name_list(
    var: &str,
    value: Option<&str>,
    default: &[&str],
) -> Result<Vec<String>, ConfigError> {
    let Some(text) = value else {
        return Ok(default.iter().map(|s| s.to_string()).collect());
    };
    let names: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() || names.iter().any(|n| n.chars().any(char::is_control)) {
        return Err(err(
            var,
            format!("expected a comma-separated list of names, got `{text}`"),
        ));
    }
    let mut seen = BTreeSet::new();
    for n in &names {
        if !seen.insert(n.as_str()) {
            return Err(err(var, format!("`{n}` is listed twice")));
        }
    }
    Ok(names)
}

pub(super) fn email(var: &str, value: Option<&str>, default: &str) -> Result<String, ConfigError> {
    let text = value.unwrap_or(default).trim();
    let valid = text
        .split_once('@')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>');
    if valid {
        Ok(text.to_string())
    } else {
        Err(err(
            var,
            format!("expected an e-mail address like bot@example.com, got `{text}`"),
        ))
    }
}

/// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
pub(super) fn boolean(var: &str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "yes" | "on" | "1") => Ok(true),
        Some("false" | "no" | "off" | "0") => Ok(false),
        Some(other) => Err(err(
            var,
            format!("expected `true` or `false`, got `{other}`"),
        )),
    }
}

pub(super) fn listen(value: Option<&str>) -> Result<SocketAddr, ConfigError> {
    let text = value.unwrap_or(defaults::LISTEN).trim();
    text.parse().map_err(|_| {
        err(
            "listen",
            format!("expected an address like `0.0.0.0:8080`, got `{text}`"),
        )
    })
}

pub(super) fn log_format(value: Option<&str>) -> Result<LogFormat, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(defaults::LOG_FORMAT),
        Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(err(
            "log_format",
            format!("expected `json` or `text`, got `{other}`"),
        )),
    }
}
