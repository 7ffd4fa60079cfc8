//! `accelbench`: parses arguments and hands over to [`coordinator::cli`].
fn main() -> std::process::ExitCode {
    coordinator::cli::main()
}
