//! The `hoist` binary: parse the command line and hand over to the library.

use clap::Parser;
use hoist_cli::Cli;

/// mimalloc instead of glibc's malloc: a webhook's path allocates and frees from several threads
/// (the HTTP tasks, the store's writer), where glibc's arenas spent about 7% of the CPU under load
/// (docs/PERFORMANCE.md). Built without transparent huge pages (`no_thp`), which took idle memory
/// from 16 to 27 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Started by Lambda as `bootstrap` (no arguments, AWS_LAMBDA_RUNTIME_API set): `hoist lambda`.
    let cli = if hoist::lambda::is_bootstrap() {
        Cli::parse_from(["bootstrap", "lambda"])
    } else {
        Cli::parse()
    };
    hoist_cli::execute(cli)
}
