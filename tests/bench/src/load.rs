//! The load generator: fixed concurrency for a fixed time after a warm-up (closed loop), or
//! a fixed rate (open loop, latencies measured from each call's scheduled start so that a
//! stall is not hidden by the calls it delays). Latencies go into an HDR histogram; every
//! non-OK status is counted, and a run with errors is reported as invalid.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;
use tonic::Status;

/// How a closed-loop run is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Connections (one HTTP/2 connection each).
    pub connections: usize,
    /// Calls in flight on each connection.
    pub in_flight: usize,
    /// Calls before measuring starts.
    pub warmup: Duration,
    /// How long calls are measured.
    pub duration: Duration,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Successful calls during the measured time.
    pub calls: u64,
    /// Failed calls by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// The measured time.
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub latencies: Histogram<u64>,
}

impl Measured {
    /// Nothing measured yet.
    pub fn empty() -> Measured {
        Measured {
            calls: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
            latencies: new_histogram(),
        }
    }

    /// Successful calls per second.
    pub fn throughput(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// Failed calls.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other`'s calls, errors and latencies.
    pub fn merge(&mut self, other: &Measured) {
        self.calls += other.calls;
        for (code, count) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += count;
        }
        let _ = self.latencies.add(&other.latencies);
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits; the bounds are constants that are valid.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant, valid bounds")
}

impl Measured {
    /// Records one call that started at `started`.
    pub fn record(&mut self, started: Instant, outcome: Result<(), Status>) {
        match outcome {
            Ok(()) => {
                self.calls += 1;
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.latencies.saturating_record(micros.max(1));
            }
            Err(status) => {
                *self
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
            }
        }
    }
}

/// Runs `call(connection index, call number)` with `shape.in_flight` workers per connection
/// until the time is up; only calls that start after the warm-up are measured.
pub async fn closed_loop<F, Fut>(shape: Shape, call: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let call = Arc::new(call);
    let begin = Instant::now();
    let measure_from = begin + shape.warmup;
    let end = measure_from + shape.duration;
    let total = Arc::new(Mutex::new(Measured::empty()));
    let mut workers = tokio::task::JoinSet::new();
    for connection in 0..shape.connections {
        for worker in 0..shape.in_flight {
            let call = Arc::clone(&call);
            let total = Arc::clone(&total);
            workers.spawn(async move {
                let mut own = Measured::empty();
                let mut number = (connection * 1_000_003 + worker) as u64;
                loop {
                    let started = Instant::now();
                    if started >= end {
                        break;
                    }
                    let outcome = call(connection, number).await;
                    number += 7919;
                    if started >= measure_from {
                        own.record(started, outcome);
                    }
                }
                total.lock().await.merge(&own);
            });
        }
    }
    while workers.join_next().await.is_some() {}
    let mut measured = total.lock().await.clone();
    measured.elapsed = shape.duration;
    measured
}

/// Calls at `rate` per second for `duration` (after `warmup` at the same rate), at most
/// `max_in_flight` at once. The timer ticks at most once a millisecond, so the calls due
/// since the last tick leave together (small bursts, the rate kept on average); each
/// call's latency runs from when it is sent, after waiting for a free slot when
/// `max_in_flight` are outstanding (that wait is the service's doing and counts).
pub async fn paced<F, Fut>(
    rate: f64,
    max_in_flight: usize,
    warmup: Duration,
    duration: Duration,
    call: F,
) -> Measured
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let call = Arc::new(call);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let begin = Instant::now();
    let measure_from = begin + warmup;
    let end = measure_from + duration;
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    let total = Arc::new(Mutex::new(Measured::empty()));
    let mut calls = tokio::task::JoinSet::new();
    let mut number = 0u64;
    loop {
        let scheduled = begin + interval.mul_f64(number as f64);
        if scheduled >= end {
            break;
        }
        if scheduled > Instant::now() {
            tokio::time::sleep_until(scheduled.into()).await;
        }
        let due = Instant::now();
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let call = Arc::clone(&call);
        let total = Arc::clone(&total);
        calls.spawn(async move {
            let outcome = call(number).await;
            drop(permit);
            if scheduled >= measure_from {
                let mut own = Measured::empty();
                own.record(due, outcome);
                total.lock().await.merge(&own);
            }
        });
        number += 1;
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
    let mut measured = total.lock().await.clone();
    measured.elapsed = duration;
    measured
}
