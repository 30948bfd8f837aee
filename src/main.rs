use clap::Parser;

// glibc malloc showed up at ~12% of a get_records load profile; mimalloc halves that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
