//! The list RPCs at 100,000 rows: `ListFtms` and `ListPartners`, each on a database seeded
//! directly in bulk (as a migration from an existing installation would load it), then
//! measured one call at a time on the first page, a filter, and the 50th page reached
//! through page tokens. Paging and counting must not grow with the table: every query has
//! the same target, p99 ≤ 10 ms. On PostgreSQL the seeded table is vacuumed and analysed
//! first, as autovacuum would do by itself shortly after the load (see `settle`).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tonic::Status;

use pmp_e2e::Platform;
use pmp_proto::ftm::v1 as ftm;
use pmp_proto::ftm::v1::ftm_management_client::FtmManagementClient;
use pmp_proto::partner::v1 as registry;
use pmp_proto::partner::v1::partner_registry_client::PartnerRegistryClient;

use crate::Scale;
use crate::load::{self, Shape};
use crate::report::{Report, Row};
use crate::scenarios::authorized;

/// Rows in the seeded table at scale 1.
const ROWS: usize = 100_000;
/// The fewest rows seeded at any scale: enough for the 50th page of 20 and more.
const MINIMUM_ROWS: usize = 2_000;
/// Rows handed to one `import` call.
const SEED_BATCH: usize = 5_000;
/// The page whose token is reached by walking the pages before it.
const DEEP_PAGE: usize = 50;

/// `ListFtms` with 100,000 FTMs in the database: the first page, a status + make filter,
/// and the 50th page reached through page tokens.
pub async fn ftms(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    admin: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let count = scale.count(ROWS, MINIMUM_ROWS);
    seed_ftms(platform, count).await?;
    let channel = platform.ftm.channel().await?;
    let token = Arc::new(admin.to_owned());
    let list = move |request: ftm::ListFtmsRequest| {
        let mut client = FtmManagementClient::new(channel.clone());
        let request = authorized(request, &token);
        async move {
            Ok(client
                .list_ftms(request)
                .await?
                .into_inner()
                .next_page_token)
        }
    };
    let deep_token = token_of_page(DEEP_PAGE, |page_token| {
        list(ftm::ListFtmsRequest {
            page_token,
            ..Default::default()
        })
    })
    .await?;
    let queries = vec![
        ("first page", ftm::ListFtmsRequest::default()),
        (
            "status + make filter",
            ftm::ListFtmsRequest {
                status: ftm::FtmStatus::Approved.into(),
                make: "Make 7".into(),
                ..Default::default()
            },
        ),
        (
            "50th page via tokens",
            ftm::ListFtmsRequest {
                page_token: deep_token,
                ..Default::default()
            },
        ),
    ];
    let label = format!("ListFtms at {count} rows");
    measure(backend, scale, report, &label, queries, list).await;
    Ok(())
}

/// `count` FTMs of 1,000 partners, 50 makes and every status, straight into FTM
/// management's database.
async fn seed_ftms(platform: &Platform, count: usize) -> anyhow::Result<()> {
    use ftm_management::domain::{Ftm, FtmStatus};
    use ftm_management::storage::FtmRepository;
    let connection = connect(&platform.database_urls[2]).await?;
    let repository = ftm_management::storage::SqlFtmRepository::new(connection.clone());
    let statuses = [
        FtmStatus::PendingCertUpload,
        FtmStatus::PendingApproval,
        FtmStatus::Approved,
        FtmStatus::Rejected,
        FtmStatus::Deactivated,
    ];
    let now = chrono::Utc::now();
    let seeded = Instant::now();
    for chunk_start in (0..count).step_by(SEED_BATCH) {
        let chunk: Vec<Ftm> = (chunk_start..(chunk_start + SEED_BATCH).min(count))
            .map(|index| Ftm {
                ftm_id: format!("ftm_bench_{index:08}"),
                partner_id: format!("bench-partner-{:04}", index % 1_000),
                organization_name: format!("Bench Organisation {:04}", index % 1_000),
                make: format!("Make {}", index % 50),
                model: format!("Model {index}"),
                status: statuses[index % statuses.len()],
                certificate_id: None,
                certificate_expiry_time: None,
                reject_reason: None,
                create_time: now - chrono::Duration::seconds(index as i64),
                update_time: now - chrono::Duration::seconds(index as i64),
            })
            .collect();
        repository
            .import(&chunk)
            .await
            .map_err(|error| anyhow::anyhow!("seeding FTMs: {error}"))?;
    }
    settle(&connection, "ftms").await?;
    println!(
        "   seeded {count} FTMs in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `ListPartners` with 100,000 partners in the database: the first page, a partner type +
/// status filter (the closest the contract has to `ListFtms`' status + make), a status
/// filter alone (counted across every type), and the 50th page reached through page tokens.
pub async fn partners(
    backend: &str,
    scale: Scale,
    platform: &Platform,
    admin: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let count = scale.count(ROWS, MINIMUM_ROWS);
    seed_partners(platform, count).await?;
    let channel = platform.registry.channel().await?;
    let token = Arc::new(admin.to_owned());
    let list = move |request: registry::ListPartnersRequest| {
        let mut client = PartnerRegistryClient::new(channel.clone());
        let request = authorized(request, &token);
        async move {
            Ok(client
                .list_partners(request)
                .await?
                .into_inner()
                .next_page_token)
        }
    };
    let deep_token = token_of_page(DEEP_PAGE, |page_token| {
        list(registry::ListPartnersRequest {
            page_token,
            ..Default::default()
        })
    })
    .await?;
    let queries = vec![
        ("first page", registry::ListPartnersRequest::default()),
        (
            "type + status filter",
            registry::ListPartnersRequest {
                partner_type: "FTM_Provider".into(),
                status: registry::PartnerStatus::Active.into(),
                ..Default::default()
            },
        ),
        (
            "status filter",
            registry::ListPartnersRequest {
                status: registry::PartnerStatus::Active.into(),
                ..Default::default()
            },
        ),
        (
            "50th page via tokens",
            registry::ListPartnersRequest {
                page_token: deep_token,
                ..Default::default()
            },
        ),
    ];
    let label = format!("ListPartners at {count} rows");
    measure(backend, scale, report, &label, queries, list).await;
    Ok(())
}

/// `count` partners of five types and every status, with their user accounts, straight
/// into the registry's database. Nobody logs in as them: their password hash is a fixed
/// string that no password matches.
async fn seed_partners(platform: &Platform, count: usize) -> anyhow::Result<()> {
    use partner_registry::domain::{Partner, PartnerStatus};
    use partner_registry::storage::{ImportedPartner, PartnerRepository};
    let connection = connect(&platform.database_urls[0]).await?;
    let repository = partner_registry::storage::SqlPartnerRepository::new(connection.clone());
    let types = [
        "FTM_Provider",
        "Device_Provider",
        "Auth_Partner",
        "Credential_Partner",
        "Print_Partner",
    ];
    let statuses = [
        PartnerStatus::InProgress,
        PartnerStatus::Active,
        PartnerStatus::Deactivated,
    ];
    let now = chrono::Utc::now();
    let seeded = Instant::now();
    for chunk_start in (0..count).step_by(SEED_BATCH) {
        let chunk: Vec<ImportedPartner> = (chunk_start..(chunk_start + SEED_BATCH).min(count))
            .map(|index| {
                let partner_type = types[index % types.len()];
                let status = statuses[index % statuses.len()];
                ImportedPartner {
                    partner: Partner {
                        partner_id: format!("bench-partner-{index:06}"),
                        first_name: "Bench".into(),
                        last_name: format!("Partner {index}"),
                        organization_name: format!("Bench Organisation {:04}", index % 1_000),
                        partner_type: partner_type.into(),
                        address: format!("{index} Bench Street"),
                        email: format!("bench-partner-{index:06}@example.org"),
                        phone: "+1 555 0100".into(),
                        lang_code: "eng".into(),
                        status,
                        // A certificate id of the shape the store hands out, for every
                        // partner that has had one accepted.
                        certificate_id: (status != PartnerStatus::InProgress)
                            .then(|| format!("00000000-0000-4000-8000-{index:012}")),
                        create_time: now - chrono::Duration::seconds(index as i64),
                        update_time: now - chrono::Duration::seconds(index as i64),
                    },
                    password_hash: "bench-import: no password matches".into(),
                    roles: vec![partner_type.to_ascii_uppercase()],
                }
            })
            .collect();
        repository
            .import(&chunk)
            .await
            .map_err(|error| anyhow::anyhow!("seeding partners: {error}"))?;
    }
    settle(&connection, "partners").await?;
    println!(
        "   seeded {count} partners in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A connection of our own to a service's database, for seeding it.
async fn connect(url: &str) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let settings = pmp_common::config::DatabaseSettings {
        url: url.to_owned(),
        url_file: String::new(),
        max_connections: 2,
    };
    Ok(pmp_common::db::connect(&settings).await?)
}

/// Brings a freshly bulk-loaded `table` to the state autovacuum leaves it in within a
/// minute on PostgreSQL (planner statistics, and the visibility map that lets a count read
/// an index alone), so that the run measures the list and not the moments after the bulk
/// load. SQLite has no such background work, and the services run no `ANALYZE`: nothing
/// to do there.
async fn settle(connection: &sea_orm::DatabaseConnection, table: &str) -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait;
    if connection.get_database_backend() == sea_orm::DbBackend::Postgres {
        connection
            .execute_unprepared(&format!("VACUUM ANALYZE {table}"))
            .await?;
    }
    Ok(())
}

/// The page token of page `page` (the first is 1) of an unfiltered list, walking every page
/// before it with `list` (which takes a page token and answers the next one).
async fn token_of_page<F, Fut>(page: usize, list: F) -> anyhow::Result<String>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<String, Status>>,
{
    let mut token = String::new();
    for reached in 1..page {
        token = list(token).await?;
        anyhow::ensure!(!token.is_empty(), "the list ends at page {reached}");
    }
    Ok(token)
}

/// Each of `queries` alone, one call in flight, with `list`; reported as `label: name`
/// against p99 ≤ 10 ms.
async fn measure<Q, F, Fut>(
    backend: &str,
    scale: Scale,
    report: &mut Report,
    label: &str,
    queries: Vec<(&str, Q)>,
    list: F,
) where
    Q: Clone + Send + Sync + 'static,
    F: Fn(Q) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Status>> + Send + 'static,
{
    for (name, query) in queries {
        let list = list.clone();
        let shape = Shape {
            connections: 1,
            in_flight: 1,
            warmup: scale.duration(0.5),
            duration: scale.duration(3.0),
        };
        let measured = load::closed_loop(shape, move |_, _| {
            let answer = list(query.clone());
            async move { answer.await.map(|_| ()) }
        })
        .await;
        let p99 = measured.quantile_ms(0.99);
        report.push(
            Row::load(backend, &format!("{label}: {name}"), &measured)
                .target("p99 ≤ 10 ms", p99 <= 10.0),
        );
    }
}
