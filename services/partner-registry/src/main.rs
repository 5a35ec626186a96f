//! `partner-registry` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main::<partner_registry::PartnerRegistry>(
        "Partner registry of the FTM partner management platform: self-registration, login, partner records.",
    )
    .await
}
