//! `ftm-management` binary.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pmp_common::binary::main::<ftm_management::FtmManagement>(
        "FTM management service of the FTM partner management platform: FTM details and their review.",
    )
    .await
}
