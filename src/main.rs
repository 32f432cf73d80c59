use std::process::ExitCode;

fn main() -> ExitCode {
    s3_reconciler::cli::main()
}
