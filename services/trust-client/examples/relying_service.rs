//! A relying service checking device certificates in its own process (see the README).
use std::time::Duration;

use pmp_trust_client::{MirrorSettings, TrustMirror};
use tonic::transport::Endpoint;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = std::env::var("CERTSTORE_URL").unwrap_or("http://127.0.0.1:50052".into());
    let token = std::env::var("PMP_TOKEN")?; // a service token, or an admin's access token
    let channel = Endpoint::from_shared(store)?.connect_lazy();
    let mut settings = MirrorSettings::for_domains(&["FTM"]);
    settings.staleness_bound = Duration::from_secs(15); // refuse rather than answer from old data
    let mirror = TrustMirror::start(channel, move || Ok(format!("Bearer {token}")), settings);
    mirror.ready(Duration::from_secs(30)).await?;

    for path in std::env::args().skip(1) {
        let chain = std::fs::read_to_string(&path)?; // PEM: the leaf, then any helpers
        let local = mirror.clone();
        // A cache miss validates a path: keep it off the async workers.
        let verdict = tokio::task::spawn_blocking(move || local.verify(&chain, "FTM")).await??;
        if verdict.trusted {
            println!("{path}: trusted, path of {}", verdict.chain_pem.len());
        } else {
            println!("{path}: NOT trusted: {}", verdict.reason);
        }
    }
    Ok(())
}
