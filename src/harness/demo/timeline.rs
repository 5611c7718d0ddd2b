//! What the demo prints after the run, built only from the board: the timeline (from the board's
//! journal of writes, comments included) and the final board as a table.
//!
//! The board is the audit log (DESIGN.md): if the story cannot be told from the journal, the pods
//! did not record it, so nothing here reads the pods' own state. Pure functions over a
//! [`Board`], so every phrase is tested without running pods.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::audit::{self, Event};
use crate::config::BoardNames;
use crate::harness::sim::{ADMIN_USER, Board, JournalAction, JournalEntry, POD_FIELD};

/// Longest comment excerpt in the timeline.
const COMMENT_WIDTH: usize = 100;
/// Longest subject in the board table.
const SUBJECT_WIDTH: usize = 60;

/// The timeline lines for journal entries after `after_seq`, timed relative to `t0`. `replace`
/// shortens long texts in comments (the temporary directory's path, for example).
pub fn timeline(
    board: &Board,
    after_seq: u64,
    t0: DateTime<Utc>,
    replace: &[(String, String)],
) -> Vec<String> {
    let names = BoardNames::default();
    board
        .journal
        .iter()
        .filter(|e| e.seq > after_seq)
        .filter_map(|e| {
            let what = describe(board, &names, e, replace)?;
            let secs = (e.at - t0).num_milliseconds() as f64 / 1000.0;
            Some(format!(
                "{:>8}  {:<10}  {what}",
                format!("+{secs:.2}s"),
                who(board, e.user)
            ))
        })
        .collect()
}

/// A user as the timeline names them: the admin is the demo itself (a human's hand), pods and
/// the reviewer by login.
fn who(board: &Board, user: u64) -> String {
    if user == ADMIN_USER {
        return "demo".into();
    }
    board
        .user(user)
        .map(|u| u.login.clone())
        .unwrap_or_else(|| format!("user {user}"))
}

fn type_name(board: &Board, wp: u64) -> String {
    board
        .wps
        .get(&wp)
        .and_then(|w| board.type_(w.type_id))
        .map(|t| t.name.clone())
        .unwrap_or_else(|| "work package".into())
}

/// `Task #3 "subject"`.
fn label(board: &Board, wp: u64) -> String {
    let subject = board.wps.get(&wp).map(|w| w.subject.as_str()).unwrap_or("");
    format!("{} #{wp} \"{subject}\"", type_name(board, wp))
}

fn describe(
    board: &Board,
    names: &BoardNames,
    e: &JournalEntry,
    replace: &[(String, String)],
) -> Option<String> {
    let wp = e.wp;
    match &e.action {
        JournalAction::Created {
            subject, parent, ..
        } if e.user != ADMIN_USER => {
            let t = type_name(board, wp);
            Some(match parent {
                Some(p) if t == names.spike_type => {
                    format!("filed Spike #{wp} for #{p}: \"{subject}\"")
                }
                Some(p) => format!("created {t} #{wp} under #{p}: \"{subject}\""),
                None => format!("created {t} #{wp}: \"{subject}\""),
            })
        }
        JournalAction::Created { .. } => None,
        JournalAction::Updated { changes, .. } => Some(updated(board, names, wp, changes)),
        JournalAction::Conflict { sent, current } => Some(format!(
            "lost the race for {} #{wp}: 409 UpdateConflict (sent lockVersion {}, the board has {current})",
            type_name(board, wp),
            sent.map(|s| s.to_string()).unwrap_or_else(|| "none".into()),
        )),
        // The claim line already says this.
        JournalAction::Commented { text }
            if matches!(audit::parse(text), Some(Event::Starting { .. })) =>
        {
            None
        }
        JournalAction::Commented { text } => Some(format!("on #{wp}: {}", tidy(text, replace))),
        // Ancestors re-derived by the board, relations (only made while seeding), progress edits.
        JournalAction::Derived { .. }
        | JournalAction::Related { .. }
        | JournalAction::EditedComment { .. } => None,
    }
}

fn updated(
    board: &Board,
    names: &BoardNames,
    wp: u64,
    changes: &std::collections::BTreeMap<String, Value>,
) -> String {
    let status = changes
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| board.status(s));
    // Some(Some(pod)): set; Some(None): cleared; None: untouched.
    let pod = changes
        .get(&format!("customField{POD_FIELD}"))
        .map(|v| v.as_str());
    let t = type_name(board, wp);
    match (status, pod) {
        (Some(s), _) if s.name == names.active_status && t == names.phase_type => format!(
            "opened {}: the work below it may be claimed now",
            label(board, wp)
        ),
        // A pinned ticket's pod field is already set: only its status changes on the claim.
        (Some(s), _) if s.name == names.active_status => format!("claimed {}", label(board, wp)),
        (Some(s), Some(None)) if names.ready_statuses.contains(&s.name) => format!(
            "put {t} #{wp} back in the pool ({}, pod field cleared)",
            s.name
        ),
        (None, Some(None)) if t == names.epic_type => {
            format!("released Epic #{wp}: all its work is done (pod field cleared)")
        }
        (Some(s), _) if s.is_closed => format!("closed {}", label(board, wp)),
        (Some(s), _) => format!("{t} #{wp} is {} now", s.name),
        (None, Some(Some(p))) => format!("pinned {t} #{wp} to {p}"),
        (None, Some(None)) => format!("cleared the pod field of {t} #{wp}"),
        (None, None) => format!(
            "changed {} of {t} #{wp}",
            changes.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A comment's first line without markdown, with long commit ids shortened and `replace`
/// applied, cut to [`COMMENT_WIDTH`] characters.
fn tidy(text: &str, replace: &[(String, String)]) -> String {
    let mut line = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches(audit::PREFIX)
        .replace("**", "")
        .replace('`', "");
    for (from, to) in replace {
        line = line.replace(from.as_str(), to);
    }
    let line = line
        .split(' ')
        .map(|w| {
            let hex = w.trim_end_matches(['.', ',', ';', ':']);
            let uuid = hex.len() == 36 && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if hex.len() == 40 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                w.replacen(hex, &hex[..7], 1)
            } else if uuid {
                w.replacen(hex, &hex[..8], 1)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    cut(&line, COMMENT_WIDTH)
}

fn cut(text: &str, width: usize) -> String {
    if text.chars().count() > width {
        text.chars().take(width - 3).collect::<String>() + "..."
    } else {
        text.to_string()
    }
}

/// The board as a table: id, type, subject (indented under its parent), status, pod.
pub fn board_table(board: &Board) -> Vec<String> {
    let mut rows = vec![[
        "id".to_string(),
        "type".into(),
        "subject".into(),
        "status".into(),
        "pod".into(),
    ]];
    for w in board.wps.values() {
        let depth = board.ancestors(w.id).len();
        rows.push([
            format!("#{}", w.id),
            type_name(board, w.id),
            cut(
                &format!("{}{}", "  ".repeat(depth), w.subject),
                SUBJECT_WIDTH,
            ),
            board
                .status(w.status)
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            w.custom
                .get(&POD_FIELD)
                .cloned()
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            format!("  {}", cells.join("  ").trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::sim::seed::{SeedWp, create};
    use crate::harness::sim::{AGENT_USER, WpChange};

    fn status(b: &Board, name: &str) -> u64 {
        b.status_named(name).unwrap().id
    }

    fn claim(b: &mut Board, id: u64, pod: &str) {
        let lv = b.wps[&id].lock_version;
        let mut change = WpChange {
            status: Some(status(b, "In progress")),
            ..Default::default()
        };
        change.custom.insert(POD_FIELD, Some(pod.into()));
        b.update(AGENT_USER, id, Some(lv), change).unwrap();
    }

    fn set_status(b: &mut Board, user: u64, id: u64, name: &str) {
        let lv = b.wps[&id].lock_version;
        let change = WpChange {
            status: Some(status(b, name)),
            ..Default::default()
        };
        b.update(user, id, Some(lv), change).unwrap();
    }

    /// The timeline after seeding, without the time column.
    fn lines(b: &Board, after: u64) -> Vec<String> {
        let t0 = b.created_at();
        let replace = [("/tmp/x/remote.git".to_string(), "<remote>".to_string())];
        timeline(b, after, t0, &replace)
            .into_iter()
            .map(|l| l.split_once("s  ").unwrap().1.trim_end().to_string())
            .collect()
    }

    #[test]
    fn the_timeline_tells_claims_conflicts_comments_spikes_reviews_and_phases() {
        let mut b = Board::seeded("Phase");
        let task = create(&mut b, &SeedWp::new("Task", "Parse options")).unwrap();
        let phase = create(&mut b, &SeedWp::new("Phase", "Release 1.0")).unwrap();
        let epic = create(&mut b, &SeedWp::new("Epic", "Options")).unwrap();
        let seeded = b.journal.len() as u64;

        claim(&mut b, task, "pod-1");
        let stale = Some(0);
        assert!(
            b.update(AGENT_USER, task, stale, WpChange::default())
                .is_err()
        );
        let sha = "0123456789abcdef0123456789abcdef01234567";
        b.comment(
            AGENT_USER,
            task,
            &format!("journeyman: **pushed** `{sha}` to `/tmp/x/remote.git`.\nsecond line"),
        )
        .unwrap();
        let spike = {
            let mut s = SeedWp::new("Spike", "Spike: it broke (#1)");
            s.parent = Some(task);
            create(&mut b, &s).unwrap()
        };
        // Spikes are created by pods, not the admin (seeding): re-attribute its creation.
        for e in b.journal.iter_mut().filter(|e| e.wp == spike) {
            e.user = AGENT_USER;
        }
        let lv = b.wps[&task].lock_version;
        let mut back = WpChange {
            status: Some(status(&b, "New")),
            ..Default::default()
        };
        back.custom.insert(POD_FIELD, None);
        b.update(AGENT_USER, task, Some(lv), back).unwrap();
        set_status(&mut b, ADMIN_USER, phase, "In progress");
        set_status(&mut b, AGENT_USER, task, "In testing");
        set_status(&mut b, AGENT_USER, task, "Closed");
        claim(&mut b, epic, "pod-1");
        let lv = b.wps[&epic].lock_version;
        let mut release = WpChange::default();
        release.custom.insert(POD_FIELD, None);
        b.update(AGENT_USER, epic, Some(lv), release).unwrap();

        let expect = [
            "journeyman-bot  claimed Task #1 \"Parse options\"",
            "journeyman-bot  lost the race for Task #1: 409 UpdateConflict (sent lockVersion 0, the board has 1)",
            "journeyman-bot  on #1: pushed 0123456 to <remote>.",
            &format!("journeyman-bot  filed Spike #{spike} for #1: \"Spike: it broke (#1)\""),
            "journeyman-bot  put Task #1 back in the pool (New, pod field cleared)",
            "demo        opened Phase #2 \"Release 1.0\": the work below it may be claimed now",
            "journeyman-bot  Task #1 is In testing now",
            "journeyman-bot  closed Task #1 \"Parse options\"",
            "journeyman-bot  claimed Epic #3 \"Options\"",
            "journeyman-bot  released Epic #3: all its work is done (pod field cleared)",
        ];
        assert_eq!(lines(&b, seeded), expect);
    }

    #[test]
    fn long_comments_are_cut_and_seeding_is_left_out() {
        let mut b = Board::seeded("Phase");
        let id = create(&mut b, &SeedWp::new("Task", "x")).unwrap();
        assert!(lines(&b, 0).is_empty(), "the admin's seeding is not news");
        b.comment(AGENT_USER, id, &"word ".repeat(50)).unwrap();
        let l = lines(&b, 0);
        assert_eq!(l.len(), 1);
        assert!(l[0].ends_with("..."), "{}", l[0]);
        assert!(l[0].chars().count() < 130, "{}", l[0]);
    }

    #[test]
    fn the_board_table_indents_children_and_shows_pods() {
        let mut b = Board::seeded("Phase");
        let epic = create(&mut b, &SeedWp::new("Epic", "Options")).unwrap();
        create(
            &mut b,
            &SeedWp::new("Task", "Parse").parent(epic).pod("pod-2"),
        )
        .unwrap();
        let table = board_table(&b);
        let cells: Vec<Vec<&str>> = table
            .iter()
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect()
            })
            .collect();
        assert_eq!(cells[0], ["id", "type", "subject", "status", "pod"]);
        assert_eq!(cells[1], ["#1", "Epic", "Options", "New", "-"]);
        assert_eq!(cells[2], ["#2", "Task", "Parse", "New", "pod-2"]);
        assert!(table[2].contains("  Parse"), "indented under its parent");
    }
}
