use std::process::ExitCode;

fn main() -> ExitCode {
    preroll::cli::main()
}
