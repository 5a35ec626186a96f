//! `pmpctl health`: the gRPC health of the three services, optionally waiting until all of
//! them are SERVING (scripts such as `make run` wait on it before the demo).

use std::time::{Duration, Instant};

use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::Context;
use crate::cli::HealthArgs;
use crate::failure::{CliError, EXIT_UNAVAILABLE, Service};
use crate::output::{Outcome, Table};

/// One service's answer.
#[derive(Debug, Serialize)]
struct HealthView {
    service: &'static str,
    address: String,
    status: String,
}

const SERVICES: [Service; 3] = [
    Service::Registry,
    Service::CertificateStore,
    Service::FtmManagement,
];

/// Checks (and with `--wait`, re-checks) every service until all are SERVING.
pub async fn run(context: &Context, args: HealthArgs) -> Result<Outcome, CliError> {
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    loop {
        let views = check_all(context).await?;
        let serving = views.iter().all(|view| view.status == "SERVING");
        if serving || Instant::now() >= deadline {
            return outcome(views, serving);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn check_all(context: &Context) -> Result<Vec<HealthView>, CliError> {
    let mut views = Vec::with_capacity(SERVICES.len());
    for service in SERVICES {
        let connection = context.connection(service)?;
        let mut client = HealthClient::new(connection.channel.clone());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.grpc_name().to_owned(),
        });
        request.set_timeout(Duration::from_secs(2));
        let status = match client.check(request).await {
            Ok(response) => ServingStatus::try_from(response.into_inner().status)
                .map(|status| status.as_str_name().to_owned())
                .unwrap_or_else(|_| "UNKNOWN".to_owned()),
            Err(_) => "UNREACHABLE".to_owned(),
        };
        views.push(HealthView {
            service: service.display_name(),
            address: connection.address,
            status,
        });
    }
    Ok(views)
}

fn outcome(views: Vec<HealthView>, serving: bool) -> Result<Outcome, CliError> {
    let mut table = Table::with_header(&["SERVICE", "ADDRESS", "STATUS"]);
    for view in &views {
        table.push(vec![
            view.service.to_owned(),
            view.address.clone(),
            view.status.clone(),
        ]);
    }
    let ids = views.iter().map(|view| view.status.clone()).collect();
    let result = Outcome::new(&views, table.render(), ids)?;
    Ok(if serving {
        result
    } else {
        result.failing(CliError::Refused {
            message: "not every service is SERVING".into(),
            exit_code: EXIT_UNAVAILABLE,
        })
    })
}
