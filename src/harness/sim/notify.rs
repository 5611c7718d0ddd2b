//! The `notify` flag of every write, recorded so tests can prove what a worker asked for.
//!
//! On a real instance every claim, comment and status change notifies every watcher unless the
//! client sends `?notify=false`; a fleet of pods that forgets it floods people's inboxes. What the
//! board does, read from OpenProject's source:
//!
//! - `lib/api/v3/work_packages/work_packages_shared_helpers.rb` (`notify_according_to_params`):
//!   `params[:notify] != 'false'`, used by `POST /api/v3/work_packages`, `PATCH
//!   /api/v3/work_packages/{id}` (`lib/api/v3/work_packages/work_packages_api.rb`) and `POST
//!   /api/v3/projects/{id}/work_packages`. Only the exact text `false` turns it off: absent, `0`,
//!   `no` or `False` all notify.
//! - `lib/api/v3/activities/activities_by_work_package_api.rb`: a comment is sent with
//!   `send_notifications: !(params.has_key?(:notify) && params[:notify] == 'false')`, the same rule.
//! - `app/services/work_packages/update_ancestors_service.rb`: ancestors re-derived because a child
//!   changed are saved inside `Journal::NotificationConfiguration.with(false)`: never notified.

use std::collections::HashMap;

/// What kind of write a [`Notification`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A work package was created.
    Create,
    /// A work package was changed (PATCH, or a human's edit through the board handle).
    Update,
    /// A comment was posted.
    Comment,
    /// An ancestor was re-derived because a descendant changed (never notifies).
    Derived,
}

/// One write and whether it asked OpenProject to notify watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Order among notifications, from 1.
    pub seq: u64,
    /// The work package written.
    pub wp: u64,
    /// The user whose request made the write.
    pub user: u64,
    pub kind: WriteKind,
    pub notify: bool,
}

/// The `notify` query parameter as OpenProject reads it: `true` unless it is exactly `false`.
pub fn notify_param(params: &HashMap<String, String>) -> bool {
    params.get("notify").map(String::as_str) != Some("false")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_text_false_turns_notifications_off() {
        let p = |v: Option<&str>| {
            let mut m = HashMap::new();
            if let Some(v) = v {
                m.insert("notify".to_string(), v.to_string());
            }
            notify_param(&m)
        };
        assert!(p(None));
        assert!(!p(Some("false")));
        for v in ["true", "0", "no", "False", "FALSE", ""] {
            assert!(p(Some(v)), "notify={v} still notifies");
        }
    }
}
