use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _config: Config) -> anyhow::Result<()> {
    anyhow::bail!("`spikewatch featurize` is not implemented yet")
}
