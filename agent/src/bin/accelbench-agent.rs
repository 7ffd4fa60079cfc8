//! `accelbench-agent`: parses arguments and hands over to [`agent::cli`].
fn main() -> std::process::ExitCode {
    agent::cli::main()
}
