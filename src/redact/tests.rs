//! The redactor: known values anywhere, cut-off parts, token shapes, and ordinary text untouched.

use proptest::prelude::*;

use super::*;

fn redactor() -> Redactor {
    Redactor::shapes_only()
        .with("model API key", "X9mOdElKeY-0123456789abcdef")
        .with("board token", "X9b0ardT0ken9876543210")
}

#[test]
fn known_values_are_redacted_wherever_they_stand() {
    let r = redactor();
    assert_eq!(
        r.redact("key=X9mOdElKeY-0123456789abcdef;"),
        "key=[redacted: model API key];"
    );
    assert_eq!(
        r.redact("aX9b0ardT0ken9876543210b"),
        "a[redacted: board token]b"
    );
    assert_eq!(r.redact("nothing to see"), "nothing to see");
    assert!(matches!(r.redact("nothing to see"), Cow::Borrowed(_)));
}

#[test]
fn a_value_cut_at_a_line_end_is_redacted_on_both_sides() {
    let r = redactor();
    let out = r.redact("ANTHROPIC_API_KEY=X9mOdElKeY-0123\n456789abcdef and more");
    assert_eq!(
        out,
        "ANTHROPIC_API_KEY=[redacted: model API key]\n[redacted: model API key] and more"
    );
    // Too short a part to mean anything is left.
    assert_eq!(r.redact("X9mOd"), "X9mOd");
}

#[test]
fn token_shapes_are_redacted_without_being_known() {
    let r = Redactor::shapes_only();
    let cases = [
        (
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
            "Anthropic key",
        ),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz012345", "OpenAI key"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "GitHub token"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "GitHub token",
        ),
        ("glpat-abcdefghijklmnopqrst", "GitLab token"),
        ("AKIAIOSFODNN7EXAMPLE", "AWS access key"),
        ("xoxb-1234567890-abcdefghij", "Slack token"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "JWT",
        ),
        ("Authorization: Bearer abc.def.ghi", "authorization header"),
        (
            "authorization: Basic YXBpa2V5OnRva2Vu",
            "authorization header",
        ),
    ];
    for (token, kind) in cases {
        let text = format!("before {token} after");
        let out = r.redact(&text);
        assert_eq!(out, format!("before [redacted: {kind}] after"), "{token}");
    }
    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
    assert_eq!(
        r.redact(&format!("x\n{pem}\ny")),
        "x\n[redacted: private key]\ny"
    );
    let cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA";
    assert_eq!(
        r.redact(cut),
        "[redacted: private key]",
        "a block cut short"
    );
}

#[test]
fn ordinary_text_and_short_values_are_left_alone() {
    let r = Redactor::shapes_only()
        .with("short", "abc")
        .with("blank", "   ");
    let text = "sk-short task-abcdefghijklmnopqrstuvwxyz Authorization is needed; eyJ is a prefix";
    assert_eq!(
        r.redact(text),
        text,
        "a word like Authorization alone is not a header"
    );
    assert_eq!(
        r.redact("abc abc"),
        "abc abc",
        "values under MIN_SECRET are not redacted"
    );
}

#[test]
fn debug_never_shows_a_value() {
    let shown = format!("{:?}", redactor());
    assert!(!shown.contains("X9mOdElKeY"), "{shown}");
    assert!(shown.contains("model API key"), "{shown}");
}

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_+/=-]{12,48}".prop_map(|s| format!("X9{s}"))
}

proptest! {
    #![proptest_config(crate::fuzz_config(512))]

    #[test]
    fn a_secret_embedded_anywhere_is_never_printed(a in any::<String>(), b in any::<String>(), s in secret()) {
        let r = Redactor::shapes_only().with("secret", &s);
        let text = format!("{a}{s}{b}");
        let out = r.redact(&text);
        prop_assert!(!out.contains(s.as_str()), "{out:?}");
    }

    #[test]
    fn a_secret_cut_at_a_line_end_leaves_neither_part(a in "[ a-z.,:=]{0,40}", b in "[ a-z.,:=]{0,40}", s in secret(), cut in MIN_PART..40usize) {
        prop_assume!(cut + MIN_PART <= s.len());
        let r = Redactor::shapes_only().with("secret", &s);
        let (head, tail) = s.split_at(cut);
        let text = format!("{a}{head}\n{tail}{b}");
        let out = r.redact(&text);
        prop_assert!(!out.contains(head), "{out:?}");
        prop_assert!(!out.contains(tail), "{out:?}");
    }

    #[test]
    fn ordinary_text_is_left_alone(text in "[a-z ,.;:()\n-]{0,300}", s in secret()) {
        let r = Redactor::shapes_only().with("secret", &s);
        prop_assert_eq!(r.redact(&text), text.as_str());
    }

    #[test]
    fn redaction_is_idempotent(a in any::<String>(), s in secret()) {
        let r = Redactor::shapes_only().with("secret", &s);
        let once = r.redact(&format!("{a}{s}")).into_owned();
        prop_assert_eq!(r.redact(&once), once.as_str());
    }
}
