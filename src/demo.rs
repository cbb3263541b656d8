//! The one-command demo (being built).

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("the demo is not built yet")
}
