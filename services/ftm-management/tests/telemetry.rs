//! Trace context across the services: the caller's W3C `traceparent` reaches the certificate
//! store through a client span of FTM management, and the audit row carries the trace id.
//! (A test binary of its own, because it installs the process-wide tracing subscriber.)

mod common;

use tonic::metadata::MetadataValue;

use common::fake_store::{SET_TRUSTED, UPLOAD, chip_certificate};
use common::{Platform, org_of};
use ftm_management::storage::FtmRepository;
use pmp_common::config::{LogFormat, TelemetrySettings};
use pmp_proto::ftm::v1 as proto;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn traced<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = pmp_common::testing::with_token(message, token);
    let traceparent: MetadataValue<_> = format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
        .parse()
        .expect("metadata");
    request.metadata_mut().insert("traceparent", traceparent);
    request
}

/// `(trace id, span id)` of a `traceparent` value.
fn parts(traceparent: &str) -> (String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    (fields[1].to_owned(), fields[2].to_owned())
}

#[tokio::test]
async fn trace_context_and_identity_propagate_to_the_store_and_into_the_audit() {
    let telemetry = pmp_common::telemetry::init(
        "ftm-management-test",
        &TelemetrySettings {
            log_format: LogFormat::Pretty,
            log_level: "warn,pmp_common=info,ftm_management=info".into(),
        },
    )
    .expect("telemetry");
    let platform = Platform::start().await;
    let acme = platform.provider("acme").await;
    let admin = platform.admin_token().await;
    let ftm = platform
        .create(&acme, "acme", "Chip", "M1")
        .await
        .expect("created");
    platform
        .client()
        .upload_ftm_certificate(traced(
            proto::UploadFtmCertificateRequest {
                ftm_id: ftm.ftm_id.clone(),
                certificate_data: chip_certificate("one", &org_of("acme")),
            },
            &acme,
        ))
        .await
        .expect("uploaded");
    platform
        .client()
        .approve_ftm(traced(
            proto::ApproveFtmRequest {
                ftm_id: ftm.ftm_id.clone(),
            },
            &admin,
        ))
        .await
        .expect("approved");

    for (method, user) in [(UPLOAD, &acme), (SET_TRUSTED, &admin)] {
        let call = platform.store().calls(method).pop().expect("call");
        let traceparent = call.traceparent.expect("traceparent propagated");
        let (trace, span) = parts(&traceparent);
        assert_eq!(trace, TRACE_ID, "{method}: same trace");
        assert_ne!(
            span, CALLER_SPAN,
            "{method}: parented by FTM management's client span"
        );
        assert_eq!(
            call.forwarded_user.as_deref(),
            Some(user.as_str()),
            "{method}"
        );
        assert!(call.timeout.is_some(), "{method}: deadline");
        assert!(
            call.authorization
                .as_deref()
                .is_some_and(|value| value.starts_with("Bearer ")),
            "{method}: service token"
        );
    }
    let events = platform
        .repository
        .audit_events(&ftm.ftm_id)
        .await
        .expect("audit");
    let traced_events: Vec<_> = events
        .iter()
        .filter(|event| event.action != "FTM_CREATED")
        .collect();
    assert_eq!(traced_events.len(), 2);
    for event in traced_events {
        assert_eq!(event.trace_id, TRACE_ID, "{}", event.action);
    }
    // A request without a traceparent still gets a trace id of its own.
    let created = &events[0];
    assert_eq!(created.trace_id.len(), 32);
    assert_ne!(created.trace_id, TRACE_ID);
    telemetry.shutdown();
}
