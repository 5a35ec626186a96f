//! `ftm-management` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main(
        ftm_management::SERVICE_NAME,
        "FTM management service of the FTM partner management platform: FTM details and their review.",
        ftm_management::config::ENV_PREFIX,
        ftm_management::config::load,
        ftm_management::run,
    )
    .await
}
