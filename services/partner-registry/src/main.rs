//! `partner-registry` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main(
        partner_registry::SERVICE_NAME,
        "Partner registry of the FTM partner management platform: self-registration, login, partner records.",
        partner_registry::config::ENV_PREFIX,
        partner_registry::config::load,
        partner_registry::run,
    )
    .await
}
