//! `certificate-store` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main::<certificate_store::CertificateStore>(
        "Certificate store of the FTM partner management platform: CA trust store, partner and FTM certificates, trust verification.",
    )
    .await
}
