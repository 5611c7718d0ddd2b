//! The Claude Code CLI as an [`Agent`]: builds its command line and environment from the
//! [`AgentOptions`], runs it through [`process`], and judges its output with [`result`].
//!
//! Why this file exists: it is the one place that knows the CLI's interface (`-p`, `--output-format
//! json`, `--max-turns`, `--allowedTools`, `--disallowedTools`, checked against `claude --help` of
//! 2.1.330) and how it is wrapped (`nix develop --command`). Any stand-in with the same interface
//! runs through it unchanged (`JOURNEYMAN_AGENT_COMMAND`).
//!
//! What it must never do: read the worker's configuration secrets into the child (the environment
//! goes through [`env::agent_env`]), read the process environment itself (configuration captured
//! it, in [`AgentOptions::env`]), or pass ticket-controlled text anywhere but the prompt argument.

use std::ffi::OsString;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::env::AgentEnv;
use super::live::{Budgets, Live, Prices};
use super::monitor;
use super::options::{AgentOptions, EnvWrapper};
use super::process::{self, CaptureLimits, Ending, ProcessSpec};
use super::{Agent, AgentFailure, AgentReport, AgentRequest, RunBudget, env, result};

/// The Claude Code CLI (or a stand-in with its interface), run as a child process.
#[derive(Debug, Clone)]
pub struct ClaudeCli {
    command: OsString,
    wrapper: EnvWrapper,
    allowed_tools: Vec<String>,
    disallowed_tools: Vec<String>,
    extra_env: Vec<String>,
    kill_grace: Duration,
    limits: CaptureLimits,
    env: AgentEnv,
    group_file: Option<std::path::PathBuf>,
    home: Option<std::path::PathBuf>,
    prices: Prices,
}

impl ClaudeCli {
    /// `command` run directly (no wrapper), with the default tool lists and an empty environment
    /// (see [`with_env`](Self::with_env)).
    pub fn new(command: impl Into<OsString>) -> Self {
        ClaudeCli {
            command: command.into(),
            wrapper: EnvWrapper::None,
            ..ClaudeCli::from_options(&AgentOptions::default())
        }
    }

    /// As the options say: command, wrapper, tools, extra environment names, kill grace and
    /// process-group file (a pod's come from its configuration: `ClaudeCli::from_options(&config.agent)`).
    pub fn from_options(options: &AgentOptions) -> Self {
        ClaudeCli {
            command: options.command.clone().into(),
            wrapper: options.wrapper.clone(),
            allowed_tools: options.allowed_tools.clone(),
            disallowed_tools: options.disallowed_tools.clone(),
            extra_env: options.extra_env.clone(),
            kill_grace: options.kill_grace,
            limits: CaptureLimits::default(),
            env: options.env.clone(),
            group_file: options.group_file.clone(),
            home: options.home.clone(),
            prices: options.prices.clone(),
        }
    }

    /// Records the running agent's process group in `path` (see `agent::leftovers`).
    pub fn with_group_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.group_file = Some(path.into());
        self
    }

    pub fn with_wrapper(mut self, wrapper: EnvWrapper) -> Self {
        self.wrapper = wrapper;
        self
    }

    /// `--allowedTools` and `--disallowedTools`; an empty list leaves its flag out.
    pub fn with_tools(mut self, allowed: Vec<String>, disallowed: Vec<String>) -> Self {
        self.allowed_tools = allowed;
        self.disallowed_tools = disallowed;
        self
    }

    /// Names passed on top of the built-in allowlist (credentials are dropped regardless).
    pub fn with_extra_env(mut self, names: Vec<String>) -> Self {
        self.extra_env = names;
        self
    }

    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    pub fn with_capture_limits(mut self, limits: CaptureLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The variables the agent is started from, instead of the options' captured ones (tests
    /// inject fixed ones here). They are filtered through the allowlist at each run all the same.
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.env = vars.into_iter().collect();
        self
    }

    /// The full command line, program first: `<wrapper...> <command> -p <prompt> --output-format
    /// stream-json --verbose --max-turns N [--max-budget-usd X] --allowedTools A,B
    /// --disallowedTools C,D`.
    pub fn argv(&self, req: &AgentRequest) -> Vec<OsString> {
        let mut argv: Vec<OsString> = match &self.wrapper {
            EnvWrapper::None => Vec::new(),
            EnvWrapper::Command(words) => words.iter().map(OsString::from).collect(),
        };
        argv.push(self.command.clone());
        argv.push("-p".into());
        // A prompt starting with `-` would be read as an option; a leading space is harmless.
        if req.prompt.starts_with('-') {
            argv.push(format!(" {}", req.prompt).into());
        } else {
            argv.push(req.prompt.clone().into());
        }
        if let Some(session) = &req.resume {
            argv.push("--resume".into());
            argv.push(session.into());
        }
        // The stream is read as it comes (`agent::live`); print mode needs `--verbose` for it.
        argv.extend(
            ["--output-format", "stream-json", "--verbose", "--max-turns"].map(OsString::from),
        );
        argv.push(req.max_turns.to_string().into());
        if let Some(b) = &req.budget {
            // The CLI's own cap too (it knows its prices); the worker's live estimate is the other.
            // Never 0 (the CLI refuses it), and precise to the cent's hundredth.
            argv.push("--max-budget-usd".into());
            argv.push(format!("{:.4}", b.cost_usd.max(0.0001)).into());
        }
        for (flag, tools) in [
            ("--allowedTools", &self.allowed_tools),
            ("--disallowedTools", &self.disallowed_tools),
        ] {
            if !tools.is_empty() {
                argv.push(flag.into());
                argv.push(tools.join(",").into());
            }
        }
        argv
    }

    /// The child's whole environment: the captured variables filtered through the allowlist, with
    /// `HOME` set to the agent's own home and `TMPDIR` to its own temporary directory (beside the
    /// home, emptied before and after each run) when there is one.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let vars = self.env.iter().map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut env = env::agent_env(vars, &self.extra_env);
        if let Some(home) = &self.home {
            env.retain(|(k, _)| k != "HOME" && k != "TMPDIR");
            env.push(("HOME".into(), home.clone().into_os_string()));
            env.push(("TMPDIR".into(), tmp_beside(home).into_os_string()));
        }
        env
    }

    /// The agent's home (kept: its sessions live there) and an empty temporary directory.
    fn prepare_dirs(&self) -> std::io::Result<()> {
        let Some(home) = &self.home else {
            return Ok(());
        };
        let named = |what: &str, path: &std::path::Path, e: std::io::Error| {
            std::io::Error::new(
                e.kind(),
                format!("creating the agent's {what} {}: {e}", path.display()),
            )
        };
        std::fs::create_dir_all(home).map_err(|e| named("home", home, e))?;
        self.empty_tmp();
        let tmp = tmp_beside(home);
        std::fs::create_dir_all(&tmp).map_err(|e| named("temporary directory", &tmp, e))
    }

    fn empty_tmp(&self) {
        if let Some(home) = &self.home {
            let tmp = tmp_beside(home);
            if let Err(e) = std::fs::remove_dir_all(&tmp)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %tmp.display(), "cannot empty the agent's temporary directory: {e}");
            }
        }
    }

    /// Gives the agent its own `HOME` (see [`AgentOptions::home`]).
    pub fn with_home(mut self, home: impl Into<std::path::PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    async fn run_once(
        &self,
        req: &AgentRequest,
        cancel: &CancellationToken,
    ) -> Result<AgentReport, AgentFailure> {
        let mut argv = self.argv(req).into_iter();
        // `argv` always holds at least the command itself.
        let program = argv.next().expect("argv has a program");
        let program_name = program.to_string_lossy().into_owned();
        if let Err(source) = self.prepare_dirs() {
            return Err(AgentFailure::Spawn {
                program: program_name,
                source,
            });
        }
        if !req.workdir.is_dir() {
            return Err(AgentFailure::Spawn {
                program: program_name,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("working directory {} does not exist", req.workdir.display()),
                ),
            });
        }
        let spec = ProcessSpec {
            program,
            args: argv.collect(),
            workdir: req.workdir.clone(),
            env: self.env(),
            timeout: req.timeout,
            kill_grace: self.kill_grace,
            limits: self.limits,
            group_file: self.group_file.clone(),
        };
        let watch = self.watch(req);
        let watched = monitor::run(&spec, cancel, &watch).await;
        // What the run left in its temporary directory goes with it (Claude Code leaves some, and
        // `nix develop` a `nix-shell.*` directory each time: it execs, so it never cleans up).
        self.empty_tmp();
        let watched = watched.map_err(|source| AgentFailure::Spawn {
            program: program_name,
            source,
        })?;
        let finished = watched.finished;
        let stderr_tail = finished.stderr.tail_text(self.limits.stderr_tail);
        match finished.ending {
            Ending::Cancelled => match watched.breach {
                Some(breach) => Err(AgentFailure::Budget {
                    breach,
                    report: live_report(&watched.live, &watch.prices),
                    stderr_tail,
                }),
                None => Err(AgentFailure::Cancelled),
            },
            Ending::TimedOut => Err(AgentFailure::Timeout {
                after: req.timeout,
                stderr_tail,
            }),
            Ending::Exited(exit) => result::judge(
                exit,
                &finished.stdout.parse_view(),
                finished.stdout.is_truncated(),
                finished.stdout.tail_text(64 << 10),
                stderr_tail,
            ),
        }
    }

    /// The run's live budgets: the request's, or only the turn cap (and the timeout) without one.
    fn watch(&self, req: &AgentRequest) -> monitor::Watch {
        let budget = req.budget.clone().unwrap_or(RunBudget {
            cost_usd: f64::INFINITY,
            cost_named: "no cost budget".into(),
            stall: req.timeout,
        });
        monitor::Watch {
            prices: self.prices.clone(),
            budgets: Budgets {
                cost_usd: budget.cost_usd,
                cost_named: budget.cost_named,
                max_turns: req.max_turns,
                stall: budget.stall,
            },
            progress: req.progress.clone(),
        }
    }
}

/// The agent's temporary directory: `agent-tmp` beside its home in the pod's workdir.
fn tmp_beside(home: &std::path::Path) -> std::path::PathBuf {
    home.with_file_name("agent-tmp")
}

/// What a run stopped on a budget had spent, from its stream (it printed no result object).
fn live_report(live: &Live, prices: &Prices) -> AgentReport {
    let t = live.tokens();
    AgentReport {
        session_id: live.session_id.clone(),
        num_turns: live.turns(),
        input_tokens: t.input,
        output_tokens: t.output,
        cache_read_tokens: t.cache_read,
        cache_creation_tokens: t.cache_write,
        cost_usd: live.cost_usd(prices),
        duration_ms: 0,
        subtype: "stopped_on_budget".into(),
        is_error: true,
        result: String::new(),
    }
}

impl Agent for ClaudeCli {
    /// `<wrapper...> true` in the checkout: the dev shell built and entered, nothing else.
    async fn enter_environment(
        &self,
        workdir: &std::path::Path,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<Duration>, AgentFailure> {
        let EnvWrapper::Command(words) = &self.wrapper else {
            return Ok(None);
        };
        let Some((program, args)) = words.split_first() else {
            return Ok(None);
        };
        if let Err(source) = self.prepare_dirs() {
            return Err(AgentFailure::Spawn {
                program: program.clone(),
                source,
            });
        }
        let spec = ProcessSpec {
            program: program.into(),
            args: args
                .iter()
                .map(OsString::from)
                .chain(["true".into()])
                .collect(),
            workdir: workdir.to_path_buf(),
            env: self.env(),
            timeout,
            kill_grace: self.kill_grace,
            limits: self.limits,
            group_file: self.group_file.clone(),
        };
        let started = std::time::Instant::now();
        let finished = process::run(&spec, cancel)
            .await
            .map_err(|source| AgentFailure::Spawn {
                program: program.clone(),
                source,
            })?;
        let stderr_tail = finished.stderr.tail_text(self.limits.stderr_tail);
        match finished.ending {
            Ending::Exited(exit) if exit.success() => Ok(Some(started.elapsed())),
            Ending::Exited(exit) if exit.code.is_some() => Err(AgentFailure::EnvironmentFailed {
                command: format!("{} true", words.join(" ")),
                code: exit.code,
                error: super::nix_error(&stderr_tail),
                stderr_tail,
            }),
            Ending::Exited(exit) => Err(AgentFailure::Exited {
                code: exit.code,
                signal: exit.signal,
                stderr_tail,
                report: None,
            }),
            Ending::TimedOut => Err(AgentFailure::Timeout {
                after: timeout,
                stderr_tail,
            }),
            Ending::Cancelled => Err(AgentFailure::Cancelled),
        }
    }

    /// Claude Code keeps a session as `<home>/.claude/projects/<project>/<id>.jsonl`.
    fn has_session(&self, id: &str) -> bool {
        let Some(home) = &self.home else {
            return false;
        };
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let projects = home.join(".claude").join("projects");
        valid
            && std::fs::read_dir(projects).is_ok_and(|dirs| {
                dirs.flatten()
                    .any(|d| d.path().join(format!("{id}.jsonl")).is_file())
            })
    }

    #[tracing::instrument(skip_all, fields(workdir = %req.workdir.display(), max_turns = req.max_turns))]
    async fn run(
        &self,
        req: &AgentRequest,
        cancel: &CancellationToken,
    ) -> Result<AgentReport, AgentFailure> {
        let outcome = self.run_once(req, cancel).await;
        match &outcome {
            Ok(r) => tracing::info!(
                session = r.session_id.as_deref().unwrap_or(""),
                turns = r.num_turns,
                cost_usd = r.cost_usd,
                "agent succeeded"
            ),
            Err(e) => tracing::warn!(
                reason = %e.reason(),
                environment = e.is_environment(),
                cost_usd = e.report().map(|r| r.cost_usd),
                "agent failed"
            ),
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(prompt: &str) -> AgentRequest {
        AgentRequest {
            workdir: "/tmp".into(),
            prompt: prompt.into(),
            max_turns: 7,
            timeout: Duration::from_secs(1),
            resume: None,
            budget: None,
            progress: None,
        }
    }

    fn strings(argv: Vec<OsString>) -> Vec<String> {
        argv.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn command_line_matches_the_real_cli_flags() {
        let argv = strings(ClaudeCli::new("claude").argv(&req("do it")));
        assert_eq!(
            argv,
            [
                "claude",
                "-p",
                "do it",
                "--output-format",
                "stream-json",
                "--verbose",
                "--max-turns",
                "7",
                "--allowedTools",
                "Read,Edit,Write,Glob,Grep,Bash,TodoWrite",
                "--disallowedTools",
                "Bash(git:*),WebFetch,WebSearch,Agent,Task",
            ]
        );
    }

    #[test]
    fn wrapper_words_come_first_and_empty_tool_lists_are_left_out() {
        let cli = ClaudeCli::new("claude")
            .with_wrapper(EnvWrapper::Command(vec![
                "nix".into(),
                "develop".into(),
                "--command".into(),
            ]))
            .with_tools(vec!["Read".into()], vec![]);
        let argv = strings(cli.argv(&req("x")));
        assert_eq!(&argv[..4], ["nix", "develop", "--command", "claude"]);
        assert_eq!(&argv[argv.len() - 2..], ["--allowedTools", "Read"]);
    }

    #[test]
    fn a_prompt_cannot_become_an_option() {
        let argv = strings(ClaudeCli::new("claude").argv(&req("--dangerously-skip-permissions")));
        assert_eq!(argv[2], " --dangerously-skip-permissions");
    }

    #[test]
    fn from_options_uses_the_command_wrapper_and_tools() {
        let options = AgentOptions {
            command: "/opt/claude".into(),
            wrapper: EnvWrapper::Command(vec!["nix".into(), "develop".into(), "--command".into()]),
            allowed_tools: vec!["Read".into()],
            disallowed_tools: vec!["Write".into()],
            ..AgentOptions::default()
        };
        let argv = strings(ClaudeCli::from_options(&options).argv(&req("x")));
        assert_eq!(&argv[..4], ["nix", "develop", "--command", "/opt/claude"]);
        assert!(argv.ends_with(&[
            "--allowedTools".into(),
            "Read".into(),
            "--disallowedTools".into(),
            "Write".into()
        ]));
    }
}
