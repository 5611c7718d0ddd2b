//! The scripted stand-in for the `claude` CLI as its own binary (see `journeyman::harness::scripted_agent`).

fn main() -> std::process::ExitCode {
    journeyman::harness::scripted_agent::main()
}
