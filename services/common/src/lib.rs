//! Plumbing that every platform service needs, written once.
//!
//! Each service crate is a thin composition of these pieces with its own domain logic:
//! [`bootstrap`] starts a service (database, metrics, audit, server) the same way for all,
//! [`config`] loads layered settings, [`telemetry`] sets up logs and OpenTelemetry traces,
//! [`server`] runs a tonic server with health, reflection and graceful shutdown, [`auth`]
//! verifies bearer tokens and mints service tokens, [`error`] builds statuses carrying the
//! contract's `ErrorInfo`, [`db`] opens SQLite or PostgreSQL by URL, [`client`] makes outgoing
//! calls with deadlines, identity and trace context, and [`pagination`] handles AIP-158 paging.

#![warn(missing_docs, unreachable_pub)]

pub mod audit;
pub mod auth;
pub mod binary;
pub mod bootstrap;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod event_feed;
pub mod keys;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod pagination;
pub mod security;
pub mod server;
pub mod signing;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod tls;

pub use error::{ERROR_DOMAIN, error_status};
