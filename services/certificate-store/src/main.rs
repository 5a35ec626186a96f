//! `certificate-store` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main(
        certificate_store::SERVICE_NAME,
        "Certificate store of the FTM partner management platform: CA trust store, partner and FTM certificates, trust verification.",
        certificate_store::config::ENV_PREFIX,
        certificate_store::config::load,
        certificate_store::run,
    )
    .await
}
