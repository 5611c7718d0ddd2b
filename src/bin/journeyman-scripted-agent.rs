//! The scripted stand-in for the `claude` CLI as its own binary (see `journeyman::agent::scripted`).

fn main() -> std::process::ExitCode {
    journeyman::agent::scripted::main()
}
