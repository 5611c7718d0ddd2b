//! The command line: parses arguments and hands over to the library. No logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use journeyman::config::{Config, LogFormat};
use journeyman::harness::sim;

/// A stateless worker that turns an OpenProject board into a team of coding agents.
///
/// Each pod polls the board, claims the highest-priority eligible work package with an optimistic
/// write, runs Claude Code in a Nix dev shell, commits and pushes, and reports back on the ticket.
/// Configuration comes from JOURNEYMAN_* environment variables (see README.md).
#[derive(Debug, Parser)]
#[command(name = "journeyman", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the worker loop: poll, decide, claim, execute, report, until SIGTERM.
    Run,
    /// Run one cycle, then exit (for debugging and cron). Exit code 0 whether or not work was found.
    Once,
    /// Check configuration, board access, board names, git credentials and tools; print fixes.
    Doctor {
        /// Also enter one repository's dev shell as the worker does (`nix develop --command true`
        /// in a scratch clone, nothing pushed) and say how long it took.
        #[arg(long)]
        deep: bool,
        /// The project (of JOURNEYMAN_REPOS) whose repository `--deep` enters; the first by default.
        #[arg(long, requires = "deep", value_name = "PROJECT")]
        repo: Option<String>,
    },
    /// Run the whole cycle on the embedded default: a bundled board, a local git remote, several pods.
    Demo {
        /// Keep the board running after the demo so you can look at it.
        #[arg(long)]
        keep: bool,
        /// Number of pods.
        #[arg(long, default_value_t = 3)]
        pods: usize,
    },
    /// Serve the bundled OpenProject-compatible board (API v3 subset) until interrupted.
    ///
    /// The token is JOURNEYMAN_BOARD_TOKEN, or a new one that is printed. Use it as
    /// `curl -u apikey:TOKEN http://ADDR/api/v3/work_packages?filters=[]` or as a Bearer token.
    Board {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// A JSON seed file of projects and work packages (see examples/).
        #[arg(long)]
        seed: Option<PathBuf>,
        /// Name of the phase type: "Phase" (older OpenProject) or "Summary task" (newer).
        #[arg(long, default_value = "Phase")]
        phase_type: String,
        /// Largest page a list answers (OpenProject's apiv3_max_page_size): a larger pageSize is
        /// silently capped, and the answer says the capped pageSize.
        #[arg(long, default_value_t = 1000)]
        max_page_size: u64,
        /// Enforce OpenProject's standard seed workflows (e.g. a Task may not go to In testing)
        /// instead of allowing every status transition.
        #[arg(long)]
        standard_workflows: bool,
        /// Make the "Agent pod" custom field Long text (a {format, raw, html} object on the wire)
        /// instead of a string field.
        #[arg(long)]
        long_text_pod_field: bool,
    },
}

fn main() -> ExitCode {
    if journeyman::harness::scripted_agent::invoked() {
        return journeyman::harness::scripted_agent::main();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Run | Command::Once | Command::Doctor { .. } => worker(cli.command),
        Command::Demo { .. } | Command::Board { .. } => harness(cli.command),
    }
}

/// `run`, `once` and `doctor`: configuration first (a bad value fails before anything starts),
/// then git's network timeouts (process-wide, so before any thread), then the runtime. The worker
/// is I/O-bound and runs one task at a time: one thread keeps its memory small.
fn worker(command: Command) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("journeyman: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: no thread exists yet, so nothing else uses libgit2.
    unsafe {
        journeyman::workspace::set_network_timeouts(config.git_connect_timeout, config.git_timeout);
    }
    journeyman::telemetry::init(config.log_format, config.redactor());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = runtime_then(runtime, async move {
        match command {
            Command::Run => journeyman::run::run(config, journeyman::pod::Mode::Loop)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Once => journeyman::run::run(config, journeyman::pod::Mode::Once)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Doctor { deep, repo } => {
                let mut checks = journeyman::doctor::run(&config).await;
                if deep {
                    checks.push(journeyman::doctor::dev_shell(&config, repo.as_deref()).await);
                }
                print!("{}", journeyman::doctor::render(&checks));
                Ok(if checks.iter().all(|c| c.ok) {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            _ => Ok(ExitCode::FAILURE),
        }
    });
    exit(result)
}

/// `demo` and `board`: they serve many connections, on several threads.
fn harness(command: Command) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    let result = runtime_then(runtime, async move {
        match command {
            Command::Demo { keep, pods } => {
                journeyman::harness::demo::run(journeyman::harness::demo::DemoOptions {
                    keep,
                    pods,
                })
                .await
                .map(|()| ExitCode::SUCCESS)
            }
            Command::Board {
                listen,
                seed,
                phase_type,
                max_page_size,
                standard_workflows,
                long_text_pod_field,
            } => {
                let opts = sim::BoardOptions {
                    listen,
                    phase_type,
                    max_page_size,
                    workflows: if standard_workflows {
                        sim::WorkflowPreset::StandardSeed
                    } else {
                        sim::WorkflowPreset::AllowAll
                    },
                    pod_field_format: if long_text_pod_field {
                        sim::CfFormat::Text
                    } else {
                        sim::CfFormat::String
                    },
                    ..sim::BoardOptions::default()
                };
                board(opts, seed).await
            }
            _ => Ok(ExitCode::FAILURE),
        }
    });
    exit(result)
}

/// Runs `main` on the runtime, then shuts the runtime down without waiting more than a second for
/// blocking work still running (a git operation on a server that hangs ends at its own timeout;
/// it must not hold the process after a clean shutdown).
fn runtime_then(
    runtime: std::io::Result<tokio::runtime::Runtime>,
    main: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    let runtime = runtime.map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(main);
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn exit(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("journeyman: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn board(opts: sim::BoardOptions, seed: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    journeyman::telemetry::init(LogFormat::Text, journeyman::redact::Redactor::shapes_only());
    let (token, generated) = match std::env::var("JOURNEYMAN_BOARD_TOKEN") {
        Ok(t) if !t.trim().is_empty() => (t.trim().to_string(), false),
        _ => (random_token(), true),
    };
    let handle = sim::start(sim::BoardOptions {
        token: token.clone(),
        ..opts
    })
    .await?;
    if let Some(path) = seed {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading seed file {}", path.display()))?;
        let file = sim::seed::SeedFile::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let n = file.work_packages.len();
        file.apply(&mut handle.board())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        println!("seeded {n} work packages from {}", path.display());
    }
    println!("bundled board listening on {}", handle.url());
    if generated {
        println!("token (JOURNEYMAN_BOARD_TOKEN was unset): {token}");
    }
    println!(
        "try: curl -u apikey:$TOKEN '{}api/v3/work_packages?filters=[]'",
        handle.url()
    );
    let mut signals = journeyman::shutdown::Signals::new()?;
    signals.recv().await;
    handle.shutdown();
    Ok(ExitCode::SUCCESS)
}

fn random_token() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}
