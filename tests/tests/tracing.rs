//! One client call that crosses services is ONE trace: with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set, the three real service processes export OTLP/gRPC spans (the protocol Jaeger accepts
//! on 4317) to an in-process receiver; UploadFtmCertificate, sent with our own W3C
//! traceparent, yields the ftm-management server span as our child, its client spans, and
//! the registry's and store's server spans as children of those, with database spans below.

mod support;

use std::time::Duration;

use pmp_e2e::Platform;
use pmp_e2e::otlp::{OtlpReceiver, ReceivedSpan};
use pmp_proto::ftm::v1 as ftm;

use support::{Clients, chip, ftm_pki, onboard_partner};

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut buffer).expect("random");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn spans_of_trace(receiver: &OtlpReceiver, trace_id: &str) -> Vec<ReceivedSpan> {
    let wanted = ["ftm-management", "partner-registry", "certificate-store"];
    for _ in 0..200 {
        let spans: Vec<ReceivedSpan> = receiver
            .spans()
            .into_iter()
            .filter(|span| span.trace_id == trace_id)
            .collect();
        let complete = wanted.iter().all(|service| {
            spans
                .iter()
                .any(|span| span.service_name == *service && span.kind == SERVER)
        });
        if complete {
            // Give the batch exporters one more round for the spans that close last.
            tokio::time::sleep(Duration::from_millis(600)).await;
            return receiver
                .spans()
                .into_iter()
                .filter(|span| span.trace_id == trace_id)
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the trace never reached all three services: {:#?}",
        receiver.spans()
    );
}

#[tokio::test]
async fn upload_ftm_certificate_is_one_trace_across_three_services() {
    let receiver = OtlpReceiver::start().await.expect("receiver");
    let platform = Platform::start_with(
        "sqlite",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await
    .expect("platform");
    let clients = Clients::connect(&platform).await;
    let pki = ftm_pki();
    let (_admin, partner_token) = onboard_partner(&clients, &pki).await;
    let created = clients
        .create_ftm(&partner_token, "acme-ftm", "ACME", "Traced Chip")
        .await;

    let trace_id = random_hex(16);
    let our_span_id = random_hex(8);
    let message = ftm::UploadFtmCertificateRequest {
        ftm_id: created.ftm_id.clone(),
        certificate_data: chip(&pki, "traced-chip").pem().expect("pem"),
    };
    let mut request = pmp_common::testing::with_token(message, &partner_token);
    let traceparent = format!("00-{trace_id}-{our_span_id}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("metadata"));
    clients
        .ftm
        .clone()
        .upload_ftm_certificate(request)
        .await
        .expect("upload");

    let spans = spans_of_trace(&receiver, &trace_id).await;
    let server_span = |service: &str, rpc: &str| {
        spans
            .iter()
            .find(|span| {
                span.service_name == service && span.kind == SERVER && span.name.ends_with(rpc)
            })
            .unwrap_or_else(|| panic!("no {service} server span {rpc} in {spans:#?}"))
    };
    let ftm_server = server_span("ftm-management", "FtmManagement/UploadFtmCertificate");
    assert_eq!(
        ftm_server.parent_span_id, our_span_id,
        "the caller's context is the parent"
    );

    let ftm_clients: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| {
            span.service_name == "ftm-management" && span.kind == CLIENT && span.name.contains("/")
        })
        .collect();
    assert!(
        ftm_clients.len() >= 2,
        "client spans for the registry and the store: {ftm_clients:#?}"
    );
    for client in &ftm_clients {
        assert!(
            is_descendant(&spans, client, &ftm_server.span_id),
            "client span under the server span: {client:?}"
        );
    }
    let registry_server = server_span("partner-registry", "PartnerRegistry/GetPartner");
    let store_server = server_span(
        "certificate-store",
        "CertificateStore/UploadPartnerCertificate",
    );
    for downstream in [registry_server, store_server] {
        let parent = ftm_clients
            .iter()
            .find(|client| client.span_id == downstream.parent_span_id);
        assert!(
            parent.is_some(),
            "{} server span's parent is an ftm-management client span",
            downstream.service_name
        );
    }
    let database_spans: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.name.starts_with("sea_orm"))
        .collect();
    for service in ["ftm-management", "certificate-store", "partner-registry"] {
        assert!(
            database_spans
                .iter()
                .any(|span| span.service_name == service),
            "{service} has database spans in the trace: {database_spans:#?}"
        );
    }
    assert!(spans.iter().all(|span| span.trace_id == trace_id));
}

/// Whether `ancestor_id` is on the parent chain of `span` (within the collected spans).
fn is_descendant(spans: &[ReceivedSpan], span: &ReceivedSpan, ancestor_id: &str) -> bool {
    let mut current = span.parent_span_id.clone();
    for _ in 0..32 {
        if current == ancestor_id {
            return true;
        }
        match spans.iter().find(|candidate| candidate.span_id == current) {
            Some(parent) => current = parent.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}
