//! Opening the service's own database by URL alone: SQLite (the embedded default; the file
//! and its directory are created when missing) or PostgreSQL (production).

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::config::DatabaseSettings;

/// Connects to the database named by `settings.url`.
///
/// SQLite runs in WAL mode with a busy timeout so that concurrent writers queue instead of
/// failing with "database is locked", and with foreign keys enforced.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.connection_url().map_err(DbErr::Custom)?;
    let url = if is_sqlite(&url) {
        prepare_sqlite_url(&url)?
    } else {
        url
    };
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(settings.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    Database::connect(options).await
}

/// Key of the advisory lock held while migrating ("pmp_migr"). PostgreSQL scopes advisory
/// locks to the database, and each service has its own.
const MIGRATION_LOCK_KEY: i64 = 0x706d_705f_6d69_6772;

/// Applies `M`'s pending migrations and answers how many ran.
///
/// Safe with any number of replicas (and a Helm migration Job) starting at once: on
/// PostgreSQL everything runs in one transaction that first takes a transaction-level
/// advisory lock, so the others wait for it and then find nothing pending, and a migration
/// that fails leaves the schema as it was (PostgreSQL's DDL is transactional). A SQLite
/// database belongs to one process, which migrates it directly.
pub async fn migrate<M: MigratorTrait>(connection: &DatabaseConnection) -> Result<usize, DbErr> {
    if connection.get_database_backend() != DatabaseBackend::Postgres {
        M::install(connection).await?;
        let pending = M::get_pending_migrations(connection).await?.len();
        M::up(connection, None).await?;
        return Ok(pending);
    }
    let transaction = connection.begin().await?;
    transaction
        .execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await?;
    M::install(&transaction).await?;
    let pending = M::get_pending_migrations(&transaction).await?.len();
    M::up(&transaction, None).await?;
    transaction.commit().await?;
    Ok(pending)
}

/// Whether `url` names a SQLite database.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Creates the directory of a SQLite file so a fresh checkout works without set-up.
fn prepare_sqlite_url(url: &str) -> Result<String, DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if !path.is_empty()
        && path != ":memory:"
        && let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| {
            DbErr::Custom(format!("cannot create {}: {error}", parent.display()))
        })?;
    }
    Ok(url.to_owned())
}

/// Whether an error is a unique-constraint violation (a concurrent insert won).
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Test support: a fresh, empty database for each test on either backend.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// Environment variable naming a PostgreSQL server for the PostgreSQL half of the
    /// storage tests, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
    pub const POSTGRES_URL_VARIABLE: &str = "PMP_TEST_POSTGRES_URL";

    /// A database that lives as long as the value: a temporary SQLite file, or a PostgreSQL
    /// database created for this test and dropped afterwards.
    pub struct TestDatabase {
        /// Connected, not migrated.
        pub connection: DatabaseConnection,
        /// Settings naming the same database (for a service started on it).
        pub settings: DatabaseSettings,
        _directory: Option<tempfile_dir::TempDir>,
        postgres_admin: Option<(String, String)>,
    }

    mod tempfile_dir {
        /// Minimal owned temporary directory (removed on drop) to avoid a runtime dependency.
        pub(super) struct TempDir(pub(super) std::path::PathBuf);
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// The backends to run storage tests on: always SQLite, PostgreSQL when configured.
    pub fn backends() -> Vec<&'static str> {
        let mut backends = vec!["sqlite"];
        if std::env::var(POSTGRES_URL_VARIABLE).is_ok() {
            backends.push("postgres");
        } else {
            eprintln!("{POSTGRES_URL_VARIABLE} is not set: PostgreSQL tests are skipped");
        }
        backends
    }

    impl TestDatabase {
        /// A new empty database on `backend` ("sqlite" or "postgres").
        pub async fn new(backend: &str) -> Result<Self, DbErr> {
            match backend {
                "postgres" => Self::postgres().await,
                _ => Self::sqlite().await,
            }
        }

        /// A temporary SQLite file.
        pub async fn sqlite() -> Result<Self, DbErr> {
            let directory = std::env::temp_dir().join(format!("pmp-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&directory)
                .map_err(|error| DbErr::Custom(error.to_string()))?;
            let settings = DatabaseSettings {
                url: format!("sqlite://{}/test.db", directory.display()),
                url_file: String::new(),
                max_connections: 5,
            };
            let connection = connect(&settings).await?;
            Ok(TestDatabase {
                connection,
                settings,
                _directory: Some(tempfile_dir::TempDir(directory)),
                postgres_admin: None,
            })
        }

        /// A fresh PostgreSQL database on the server named by [`POSTGRES_URL_VARIABLE`].
        pub async fn postgres() -> Result<Self, DbErr> {
            use sea_orm::ConnectionTrait;
            let admin_url = std::env::var(POSTGRES_URL_VARIABLE)
                .map_err(|_| DbErr::Custom(format!("{POSTGRES_URL_VARIABLE} is not set")))?;
            let name = format!("pmp_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(admin_url.as_str()).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            admin.close().await?;
            let base = admin_url
                .rsplit_once('/')
                .map(|(base, _)| base)
                .unwrap_or(&admin_url);
            let settings = DatabaseSettings {
                url: format!("{base}/{name}"),
                url_file: String::new(),
                max_connections: 10,
            };
            let connection = connect(&settings).await?;
            Ok(TestDatabase {
                connection,
                settings,
                _directory: None,
                postgres_admin: Some((admin_url, name)),
            })
        }
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Some((admin_url, name)) = self.postgres_admin.take() {
                // Dropping needs a connection of its own; do it on a separate thread so that
                // dropping inside an async test does not block its runtime.
                let _ = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async move {
                        use sea_orm::ConnectionTrait;
                        if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                            let _ = admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}
