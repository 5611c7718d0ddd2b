//! Names derived from outside text: work branch names (from ticket subjects, which are hostile
//! input) and cache directory names (from configured URLs). Pure functions, tested by property.

/// Longest slug kept from a subject, so branch names stay readable in UIs and under ref limits.
const MAX_SLUG: usize = 40;

/// The work branch of a work package: `agent/<id>-<slug>`, the slug being the subject in lowercase
/// ASCII letters and digits separated by single dashes (at most 40 characters), or `agent/<id>`
/// when nothing of the subject survives. Always a valid branch name, whatever the subject.
pub fn branch_name(id: u64, subject: &str) -> String {
    let mut slug = String::with_capacity(MAX_SLUG);
    for c in subject.chars() {
        if slug.len() >= MAX_SLUG {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("agent/{id}")
    } else {
        format!("agent/{id}-{slug}")
    }
}

/// The cache directory name for a repository URL: a readable part (the repository's last path
/// segment, sanitized) and 16 hex digits of the URL's SHA-1, so different URLs never share a
/// directory and no URL can name a path outside the cache root.
pub(crate) fn cache_dir_name(url: &str) -> String {
    let hash = git2::Oid::hash_object(git2::ObjectType::Blob, url.as_bytes())
        .map(|oid| oid.to_string())
        // Hashing a byte slice in memory cannot fail; keep a constant rather than panic.
        .unwrap_or_else(|_| "0".repeat(40));
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':', '\\'])
        .next()
        .unwrap_or("");
    let last = last.strip_suffix(".git").unwrap_or(last);
    let readable: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(40)
        .collect();
    let readable = if readable.is_empty() {
        "repo"
    } else {
        &readable
    };
    format!("{readable}-{}", &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_from_ordinary_and_hostile_subjects() {
        let cases = [
            (42, "Fix login bug", "agent/42-fix-login-bug"),
            (7, "  Ünïcödé: naïve café!! ", "agent/7-n-c-d-na-ve-caf"),
            (1, "../../etc/passwd.lock", "agent/1-etc-passwd-lock"),
            (3, "@{-1}~^:?*[\\", "agent/3-1"),
            (4, "@{}~^:?*[\\ ..", "agent/4"),
            (9, "", "agent/9"),
            (
                5,
                "A very long subject that keeps going well past the limit of forty characters",
                "agent/5-a-very-long-subject-that-keeps-going-wel",
            ),
        ];
        for (id, subject, expected) in cases {
            assert_eq!(branch_name(id, subject), expected, "subject {subject:?}");
        }
    }

    #[test]
    fn cache_dir_names_are_distinct_per_url_and_never_paths() {
        let a = cache_dir_name("https://example.com/org/app.git");
        let b = cache_dir_name("git@example.com:other/app.git");
        assert!(a.starts_with("app-") && b.starts_with("app-"), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, cache_dir_name("https://example.com/org/app.git"));
        let odd = cache_dir_name("file:///tmp/../..");
        assert!(odd.starts_with("repo-"), "{odd}");
        assert!(!odd.contains('/') && !odd.contains(".."), "{odd}");
    }
}
