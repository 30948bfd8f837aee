use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = rapport::config::Cli::parse();
    rapport::telemetry::init(&cli.telemetry());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(rapport::cli::run(cli))
}
